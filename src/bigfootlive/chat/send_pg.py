"""A chat message sent over the WebSocket, on PostgreSQL: two round trips to the database.

`send.send_message` runs in a session's transaction: `BEGIN`, the event, the row scope again,
the send's context, the INSERT and `COMMIT`, six round trips in a row before the broadcast, with
the cache's checks between them. Here the reads are one call (`bfl_chat_send_read`, migration
0027), sent while the cache is asked, and the INSERT another (`bfl_chat_send_write`), each in an
implicit transaction: the write has committed when it returns, so the broadcast (and the
sender's ack) still follow the commit. The rules, and the order the sender is told of refusals,
are `send.send_message`'s (the same functions); a followers-only room or a reply reads what it
needs in a session of its own (a transaction of reads, as before). The event's visibility and
status are read again at each send, as `access.get_viewable_event` did, in the row scope of the
tenant of the event the socket was opened for (an event never changes tenant). One difference:
the cache is asked while the event is read, so a send refused because the event is gone, not
visible or finished counts against the sender's rate limit too (as a refused ban or blocked
word always did).

Elsewhere (SQLite), `send.send_message` in a transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from bigfootlive.analytics.ports import AnalyticsState
from bigfootlive.authz.scoping import act_for_tenant
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat.rules import (
    ChatClosed,
    InvalidMessage,
    ReadOnly,
    can_moderate,
    clean_body,
    to_out,
)
from bigfootlive.chat.schemas import ChatMessageOut
from bigfootlive.chat.send import (
    announcement,
    cache_checks,
    check_parent,
    new_message,
    refuse,
    room_modes,
    slow_mode,
)
from bigfootlive.db import run_committed
from bigfootlive.events.access import EventNotFound, can_view
from bigfootlive.events.cache import EventRef
from bigfootlive.events.schemas import EventStatus, Visibility
from bigfootlive.row_security import RowScope

_READ = (
    "r_tenant",
    "r_owner",
    "r_playback",
    "r_visibility",
    "r_status",
    "r_version",
    "r_publisher",
    "r_slow_mode",
    "r_followers_only",
    "r_banned",
    "r_settings",
)


def applies(state: AnalyticsState) -> bool:
    """Whether sends take this path (PostgreSQL)."""
    return state.db.engine.dialect.name == "postgresql"


async def send_over_socket(
    state: AnalyticsState,
    subject: AuthSubject | None,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    body: str,
    reply_to: uuid.UUID | None = None,
) -> ChatMessageOut:
    """`send.send_message` for event `event_id` of tenant `tenant_id`, committed when this
    returns, and announced (the broadcast published)."""
    if subject is None:
        raise ReadOnly()
    invalid: InvalidMessage | None = None
    try:
        text = clean_body(body, state.settings.chat_max_length)
    except InvalidMessage as exc:  # told after a missing or finished event, as before
        text, invalid = "", exc
    scope = RowScope(tenant_id=tenant_id)
    read = state.db.call_scoped(
        "bfl_chat_send_read", event_id, subject.user_id, scope=scope, columns=_READ
    )
    if invalid is None:  # an invalid message is not counted against the rate limit
        rows, (revoked, until, allowed) = await asyncio.gather(
            read, cache_checks(state, subject, event_id)
        )
    else:
        rows, (revoked, until, allowed) = await read, (False, None, True)
    if not rows:
        raise EventNotFound()
    row: Any = rows[0]
    event = EventRef(
        id=event_id,
        tenant_id=row["r_tenant"],
        owner_id=row["r_owner"],
        playback_id=row["r_playback"],
        visibility=Visibility(row["r_visibility"]),
        status=EventStatus(row["r_status"]),
        version=row["r_version"],
        publisher_id=row["r_publisher"],
    )
    if not can_view(subject, event):
        raise EventNotFound()
    act_for_tenant(event.tenant_id)  # as `access.get_viewable_event`
    if event.status.is_finished:
        raise ChatClosed()
    if invalid is not None:
        raise invalid
    moderator = can_moderate(subject, event)
    refuse(
        revoked=revoked,
        banned=bool(row["r_banned"]),
        until=until,
        allowed=allowed,
        moderator=moderator,
        text=text,
        tenant_settings=row["r_settings"],
    )
    followers_only, seconds = bool(row["r_followers_only"]), int(row["r_slow_mode"] or 0)
    if (followers_only and not moderator) or reply_to is not None:
        async with state.db.sessionmaker() as session:
            if not moderator:
                await room_modes(state, session, subject, event, followers_only, seconds)
            if reply_to is not None:
                await check_parent(session, event, reply_to)
    elif not moderator:
        await slow_mode(state, subject, event, seconds)
    message = new_message(subject, event, text, reply_to)
    await state.db.call_scoped(
        "bfl_chat_send_write",
        message.id,
        message.tenant_id,
        message.event_id,
        message.user_id,
        message.author_name,
        message.body,
        message.reply_to_id,
        message.created_at,
        scope=scope,
    )
    out = to_out(message)
    await run_committed(announcement(state, event, out))  # committed: the send succeeded
    return out
