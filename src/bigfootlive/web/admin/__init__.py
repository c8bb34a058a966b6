"""The tenant admin console (issue 16): one router of its pages, tenant admins only.

| module | pages |
|---|---|
| `users.py` | members list (search, filters), a member's page, the invitation form |
| `members.py` | a member's actions: role, status, MFA reset, invitation, sessions |
| `stepup.py` | the step-up answer for actions the API guards with `RecentMfa` |
| `audit.py` | the audit log: filters, a record, CSV / JSON Lines export |
| `signin_settings.py` | password policy, lockout, self-registration, MFA policy |
| `sso.py`, `sso_forms.py` | SSO providers, test connection, SP metadata, SSO required, domains |
"""

from __future__ import annotations

from fastapi import APIRouter

from bigfootlive.web.admin import audit, members, signin_settings, sso, stepup, users
from bigfootlive.web.admin.users import PAGE_SIZE

__all__ = ["PAGE_SIZE", "router"]

router = APIRouter()
for _module in (users, members, stepup, audit, signin_settings, sso):
    router.include_router(_module.router)
