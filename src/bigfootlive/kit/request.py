"""What a request says about its caller (address, agent, id), as the services see it.

Built by `deps.get_request_meta` at the edge; FastAPI-free, so that services and the audit log
can take it without importing the web framework.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestMeta:
    ip: str
    user_agent: str
    request_id: str
