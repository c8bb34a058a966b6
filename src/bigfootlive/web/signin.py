"""The sign-in pages beyond the password form (endpoints.py): password recovery and email
confirmation (recovery.py), single sign-on (sso.py), the MFA challenge by SMS, email or backup
code (challenge.py), the guided set-up of a first factor that the organisation requires
(enrol.py). One router for app.py to include."""

from __future__ import annotations

from fastapi import APIRouter

from bigfootlive.web import challenge, enrol, recovery, sso

router = APIRouter()
router.include_router(recovery.router)
router.include_router(sso.router)
router.include_router(challenge.router)
router.include_router(enrol.router)
