"""What the chat panel (templates/_chat.html) draws, on the watch page and the studio's event
page alike: the recent messages, whether the subject moderates the event's chat
(`chat.rules.can_moderate`: the controls are rendered for them only) and the room's settings.
The panel's script then follows the event's live channel; its moderation controls call the
routes of `web.watch_chat`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat import reads
from bigfootlive.chat.rules import can_moderate
from bigfootlive.models import Event

RECENT = 30


async def chat_context(
    session: AsyncSession, subject: AuthSubject | None, event: Event
) -> dict[str, object]:
    recent, _ = await reads.history(session, event, cursor=None, limit=RECENT)
    return {
        "messages": list(reversed(recent)),
        "authors": {m.id: m.author for m in recent},
        "moderator": can_moderate(subject, event),
        "room": await reads.room_state(session, event),
    }
