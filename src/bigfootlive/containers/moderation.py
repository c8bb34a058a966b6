"""Chat auto-moderation run inside the event's container.

The rules here are real (blocked terms, flooding, repeats, link spam, shouting). The chat
domain hands each stored message to the container by publishing it on
`event:{id}:chat:inbound`; the worker hides what these rules flag (`chat.moderation.hide_flagged`)
and publishes every verdict on `event:{id}:chat:moderation`.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field

from pydantic import BaseModel

from bigfootlive.chat.wire import ChatMessage as ChatMessage
from bigfootlive.chat.wire import inbound_channel as inbound_channel

URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)


def verdict_channel(event_id: object) -> str:
    return f"event:{event_id}:chat:moderation"


class Verdict(BaseModel):
    message_id: str
    user_id: str
    action: str  # "allow" | "hide"
    reason: str | None = None


@dataclass
class ChatAutoModerator:
    blocked_terms: list[str]
    flood_messages: int = 5
    flood_seconds: float = 10.0
    max_links: int = 2
    counts: dict[str, int] = field(default_factory=dict)
    _recent: dict[str, deque[tuple[float, str]]] = field(default_factory=lambda: defaultdict(deque))

    def __post_init__(self) -> None:
        terms = [re.escape(t.strip().casefold()) for t in self.blocked_terms if t.strip()]
        self._blocked = re.compile(r"\b(" + "|".join(terms) + r")\b") if terms else None

    def check(self, message: ChatMessage, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        reason = self._reason(message, now)
        self.counts["checked"] = self.counts.get("checked", 0) + 1
        if reason is not None:
            self.counts["hidden"] = self.counts.get("hidden", 0) + 1
            self.counts[reason] = self.counts.get(reason, 0) + 1
        return Verdict(
            message_id=message.message_id,
            user_id=message.user_id,
            action="allow" if reason is None else "hide",
            reason=reason,
        )

    def _reason(self, message: ChatMessage, now: float) -> str | None:
        text = message.text.casefold()
        recent = self._recent[message.user_id]
        while recent and now - recent[0][0] > self.flood_seconds:
            recent.popleft()
        repeated = any(previous == text for _, previous in recent)
        recent.append((now, text))
        if self._blocked is not None and self._blocked.search(text):
            return "blocked_term"
        if len(recent) > self.flood_messages:
            return "flood"
        if repeated:
            return "repeated"
        if len(URL.findall(message.text)) > self.max_links:
            return "link_spam"
        letters = [c for c in message.text if c.isalpha()]
        if len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.7:
            return "shouting"
        return None


def message_uuid(value: str) -> uuid.UUID | None:
    """A chat message's id as the inbound channel carries it (None when it is not one)."""
    with contextlib.suppress(ValueError):
        return uuid.UUID(value)
    return None
