"""Chat content rules: who may take part and moderate, what a message may contain, and the
errors that say why not. Pure rules: no I/O."""

from __future__ import annotations

import functools
import re
import unicodedata
import uuid
from collections.abc import Sequence

from bigfootlive.authz.roles import Permission
from bigfootlive.authz.subject import AuthSubject
from bigfootlive.chat.schemas import ChatMessageOut
from bigfootlive.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unprocessable
from bigfootlive.events.cache import EventRef
from bigfootlive.models import ChatMessage, Event


class NotModerator(Forbidden):
    code = "not_moderator"
    message = "Only the event's owner, tenant moderators and admins can do this"


class ReadOnly(Forbidden):
    code = "read_only"
    message = "Sign in to take part in the chat"


class Banned(Forbidden):
    code = "banned"
    message = "You are banned from this event's chat"


class TimedOut(Forbidden):
    code = "timed_out"
    message = "You are timed out"


class FollowersOnly(Forbidden):
    code = "followers_only"
    message = "Only followers of the streamer can chat right now"


class SlowMode(TooManyRequests):
    code = "slow_mode"
    message = "Slow mode is on; wait before sending again"


class ChatRateLimited(TooManyRequests):
    code = "rate_limited"
    message = "You are sending messages too fast"


class InvalidMessage(Unprocessable):
    code = "invalid_message"
    message = "The message is not valid"


class BlockedWord(Unprocessable):
    code = "blocked_word"
    message = "The message contains a word that is not allowed here"


class ChatClosed(Conflict):
    code = "chat_closed"
    message = "The event has ended; its chat is closed"


class MessageNotFound(NotFound):
    code = "message_not_found"
    message = "No such message"


class TargetIsModerator(Forbidden):
    code = "target_is_moderator"
    message = "Moderators, admins and the event's owner cannot be moderated"


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "No such user"


# Bidirectional overrides/isolates can disguise text; other control characters have no place.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def can_moderate(subject: AuthSubject | None, event: Event | EventRef) -> bool:
    """The event's owner, the tenant's moderators and admins, platform admins."""
    if subject is None:
        return False
    if subject.is_platform_admin:
        return True
    if subject.tenant_id != event.tenant_id:
        return False
    return subject.user_id == event.owner_id or subject.can(Permission.CHAT_MODERATE)


def to_out(message: ChatMessage) -> ChatMessageOut:
    return ChatMessageOut(
        id=message.id,
        event_id=message.event_id,
        user_id=message.user_id,
        author=message.author_name,
        body=message.body,
        reply_to=message.reply_to_id,
        created_at=message.created_at,
    )


def clean_body(body: str, max_length: int) -> str:
    text = unicodedata.normalize("NFC", body).strip()
    if not text:
        raise InvalidMessage("The message is empty", code="empty_message")
    if len(text) > max_length:
        raise InvalidMessage(
            f"The message is longer than {max_length} characters",
            code="message_too_long",
            max_length=max_length,
        )
    for char in text:
        if char in _BIDI or (unicodedata.category(char) == "Cc" and char != "\n"):
            raise InvalidMessage("The message contains control characters", code="invalid_text")
    return text


@functools.lru_cache(maxsize=256)
def _blocked_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w.strip()) for w in words if w.strip())
    if not alternatives:
        return None
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def find_blocked_word(text: str, words: Sequence[str]) -> str | None:
    pattern = _blocked_pattern(tuple(sorted(set(words))))
    if pattern is None:
        return None
    match = pattern.search(text)
    return None if match is None else match.group(0)


def timeout_key(event_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"chat:timeout:{event_id}:{user_id}"
