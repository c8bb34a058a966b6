"""What opens the pages for members: the browser signed in, else `SignInRequired`, which the app
answers with the sign-in page and the way back (`sign_in_redirect`); and in the admin consoles,
the member's role allowed the action, else 403 (`console_admin`).

Called first in a handler's body, as the handler's own `if` was: after FastAPI has read the
request (an invalid form or query still answers 422), before anything else."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from starlette.responses import Response

from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.errors import Forbidden
from bigfootlive.web.render import redirect


class SignInRequired(Exception):
    """Raised to send the browser to sign in; it comes back to `back` (default: the page it
    asked for)."""

    def __init__(self, back: str | None = None) -> None:
        super().__init__(back)
        self.back = back


async def sign_in_redirect(request: Request, exc: Exception) -> Response:
    """The app's handler of `SignInRequired`: 303 to the sign-in page, `next` the way back."""
    back = exc.back if isinstance(exc, SignInRequired) else None
    return redirect(request, f"/signin?next={quote(back or request.url.path)}")


def signed_in(subject: AuthSubject | None, back: str | None = None) -> AuthSubject:
    """The signed-in member; with no session, `SignInRequired` (back to `back`)."""
    if subject is None:
        raise SignInRequired(back)
    return subject


def console_admin(
    subject: AuthSubject | None,
    permission: Permission = Permission.USERS_MANAGE,
    back: str | None = None,
) -> AuthSubject:
    """The signed-in member when its role has `permission` (the API's `require`), else 403;
    with no session, `SignInRequired`."""
    admin = signed_in(subject, back)
    if not admin.can(permission):
        raise Forbidden(
            "The admin console is for the organisation's admins", code="insufficient_role"
        )
    return admin
