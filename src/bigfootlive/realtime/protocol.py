"""The WebSocket protocol, version 1 (`bigfootlive.v1`); see docs/realtime.md.

Client -> server: one JSON object per text frame, `type` says which.
Server -> client: every text frame is a JSON ARRAY of messages (broadcasts arriving within the
batch window share one frame), each a JSON object with a `type`.

The broadcasts of the chat and notifications domains are defined where they are produced
(`chat.wire`, `notifications.wire`) and listed here with the gateway's own messages.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bigfootlive.chat.schemas import ChatMessageOut
from bigfootlive.chat.wire import ChatOut as ChatOut
from bigfootlive.chat.wire import Deleted as Deleted
from bigfootlive.chat.wire import Moderation as Moderation
from bigfootlive.chat.wire import Pinned as Pinned
from bigfootlive.chat.wire import RoomUpdated as RoomUpdated
from bigfootlive.chat.wire import chat_channel as chat_channel
from bigfootlive.chat.wire import control_channel as control_channel
from bigfootlive.events.simulcast_schemas import SimulcastStateMessage as SimulcastStateMessage
from bigfootlive.notifications.wire import Notification as Notification
from bigfootlive.notifications.wire import user_channel as user_channel
from bigfootlive.streaming.wire import PublishRefused as PublishRefused

PROTOCOL = "bigfootlive.v1"
PROTOCOL_VERSION = 1
BEARER_PREFIX = "bearer."


class CloseCode(enum.IntEnum):
    """Close codes for every refusal and cut-off; the reason text is informative only."""

    UNSUPPORTED_PROTOCOL = 4400
    UNAUTHORIZED = 4401  # token missing (non-public event), invalid, expired or revoked
    FORBIDDEN = 4403  # private event the viewer's role does not open
    NO_SUCH_EVENT = 4404  # no such event (also: another tenant's non-public event)
    BANNED = 4405  # refused at connect: banned from this event
    KICKED = 4406  # removed while connected (banned by a moderator)
    AUTH_TIMEOUT = 4408  # no `auth` message in time
    SLOW_CONSUMER = 4409  # the send queue overflowed
    IDLE_TIMEOUT = 4410  # no frame (pong or other) from the client in time
    EVENT_ENDED = 4411  # anonymous viewer of an ended or cancelled event: nothing more to watch
    SHUTTING_DOWN = 4503  # the server process is stopping; reconnect elsewhere


class _Client(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str | None = Field(None, max_length=64)


class AuthIn(_Client):
    type: Literal["auth"]
    token: str = Field(max_length=4096)


class PingIn(_Client):
    type: Literal["ping"]


class PongIn(_Client):
    type: Literal["pong"]


class SendIn(_Client):
    type: Literal["send"]
    body: str = Field(max_length=10_000)
    reply_to: uuid.UUID | None = None


class DeleteIn(_Client):
    type: Literal["delete"]
    message_id: uuid.UUID


class ReactIn(_Client):
    type: Literal["react"]
    kind: Literal["heart", "like", "laugh", "wow", "clap", "fire"]


class ResumeIn(_Client):
    type: Literal["resume"]
    last_id: uuid.UUID


class TimeoutIn(_Client):
    type: Literal["timeout"]
    user_id: uuid.UUID
    seconds: int = Field(ge=1)
    reason: str = Field("", max_length=500)


class BanIn(_Client):
    type: Literal["ban"]
    user_id: uuid.UUID
    reason: str = Field("", max_length=500)


class UnbanIn(_Client):
    type: Literal["unban"]
    user_id: uuid.UUID


class SlowModeIn(_Client):
    type: Literal["slow_mode"]
    seconds: int = Field(ge=0, le=3600)


class FollowersOnlyIn(_Client):
    type: Literal["followers_only"]
    enabled: bool


class PinIn(_Client):
    type: Literal["pin"]
    message_id: uuid.UUID


class UnpinIn(_Client):
    type: Literal["unpin"]


ClientMessage = Annotated[
    AuthIn
    | PingIn
    | PongIn
    | SendIn
    | DeleteIn
    | ReactIn
    | ResumeIn
    | TimeoutIn
    | BanIn
    | UnbanIn
    | SlowModeIn
    | FollowersOnlyIn
    | PinIn
    | UnpinIn,
    Field(discriminator="type"),
]
client_message: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


# --- server -> client ------------------------------------------------------------------------


class UserRef(BaseModel):
    id: uuid.UUID
    display_name: str


class RoomState(BaseModel):
    slow_mode_seconds: int
    followers_only: bool
    pinned: ChatMessageOut | None


class Welcome(BaseModel):
    type: Literal["welcome"] = "welcome"
    protocol: int = PROTOCOL_VERSION
    connection_id: str
    event_id: uuid.UUID
    event_status: str
    user: UserRef | None
    read_only: bool
    can_moderate: bool
    room: RoomState
    heartbeat_seconds: float


class Ack(BaseModel):
    type: Literal["ack"] = "ack"
    ref: str | None
    message: ChatMessageOut | None = None


class Error(BaseModel):
    type: Literal["error"] = "error"
    ref: str | None = None
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class Ping(BaseModel):
    type: Literal["ping"] = "ping"


class Pong(BaseModel):
    type: Literal["pong"] = "pong"
    ref: str | None = None


class History(BaseModel):
    type: Literal["history"] = "history"
    messages: list[ChatMessageOut]
    complete: bool  # False: more were missed than the resume limit; fetch the rest over REST


class Presence(BaseModel):
    type: Literal["presence"] = "presence"
    viewers: int
    unique_viewers: int


class Reactions(BaseModel):
    type: Literal["reactions"] = "reactions"
    second: int  # unix time of the aggregated second
    counts: dict[str, int]


class System(BaseModel):
    type: Literal["system"] = "system"
    kind: Literal["stream_live", "stream_resumed", "stream_reconnecting", "stream_ended"]
    text: str
    at: dt.datetime


# what the owner's sockets get on `user_channel`: notifications, and system messages about
# their own streams (a refused publish, a simulcast destination's state)
UserSystem = Annotated[PublishRefused | SimulcastStateMessage, Field(discriminator="kind")]
UserMessage = Annotated[Notification | UserSystem, Field(discriminator="type")]
user_message: TypeAdapter[UserMessage] = TypeAdapter(UserMessage)


ServerMessage = Annotated[
    Welcome
    | Ack
    | Error
    | Ping
    | Pong
    | ChatOut
    | Deleted
    | Pinned
    | RoomUpdated
    | Moderation
    | History
    | Presence
    | Reactions
    | System
    | Notification,
    Field(discriminator="type"),
]
server_message: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def encode(*messages: BaseModel) -> str:
    """One frame (a JSON array) holding `messages`."""
    return "[" + ",".join(m.model_dump_json() for m in messages) + "]"
