"""Parley's extensions to ACP, the way ACP prescribes (`docs/extensibility.mdx`).

- Fields live under `_meta.parley` (`PARLEY_META_KEY`):
  - `ConversationRef` at `_meta.parley.conversation` on every `session/update`;
  - `UsageDetail` at `_meta.parley.usage` on `usage_update`;
  - `SubagentInfo` at `_meta.parley.subagent` on the `tool_call_update`s of a
    `subagent` call, for clients that do not take child sessions;
  - `ParleyCapabilities` at `agentCapabilities._meta.parley` in `initialize`;
  - `SessionSettings` accepted at `session/new` `_meta.parley`.
  - `ListenerAuth` at `initialize` `_meta.parley` from a client of a TCP listener.
- Methods are named `_parley/...` (constants below).

The payloads Parley *sends* (`ConversationRef`, `UsageTotals`, `UsageDetail`,
`SubagentInfo`, `ParleyCapabilities`) always carry every key, `null` included, so clients can
read them without defaults. `SessionSettings`, which Parley *receives*, is all
optional.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from ._base import Meta, SessionId, ToolCallId
from .content import ContentBlock
from .names import describe_unknown
from .session import McpServer, SessionModeState

PARLEY_META_KEY: Final = "parley"

_T = TypeVar("_T")
_PositiveInt = Annotated[int, msgspec.Meta(gt=0)]

# -- extension methods (declared now, implemented later) -------------------------

TOOL_CALL_CANCEL: Final = "_parley/toolCall/cancel"
SESSION_PAUSE: Final = "_parley/session/pause"
SESSION_RESUME: Final = "_parley/session/resume"
SESSION_INJECT: Final = "_parley/session/inject"
SESSION_QUEUE_LIST: Final = "_parley/session/queue/list"
SESSION_QUEUE_REPLACE: Final = "_parley/session/queue/replace"
SESSION_QUEUE_WITHDRAW: Final = "_parley/session/queue/withdraw"
SESSION_SET_BUDGET: Final = "_parley/session/setBudget"
SESSION_FORK: Final = "_parley/session/fork"
SESSION_ATTACH: Final = "_parley/session/attach"
EXTENSION_METHODS: Final = (
    TOOL_CALL_CANCEL,
    SESSION_PAUSE,
    SESSION_RESUME,
    SESSION_INJECT,
    SESSION_QUEUE_LIST,
    SESSION_QUEUE_REPLACE,
    SESSION_QUEUE_WITHDRAW,
    SESSION_SET_BUDGET,
    SESSION_FORK,
    SESSION_ATTACH,
)


class ParleyStruct(msgspec.Struct, rename="camel", kw_only=True):
    """Base of the extension payloads Parley sends: camelCase, every key present."""


class ConversationRef(ParleyStruct):
    """Which conversation of the session an update belongs to.

    The root conversation has `parent` None and `depth` 0; a sub-conversation
    (a subagent) names its parent conversation and the tool call that spawned it.
    """

    id: str
    parent: str | None = None
    parent_tool_call: ToolCallId | None = None
    depth: int = 0


class UsageTotals(ParleyStruct):
    responses: int = 0
    """Model responses."""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    """The cost of the responses whose model has a known price; None when none has."""
    currency: str | None = None
    priced: bool = True
    """False when a response counted here was of a model with no known price:
    `cost` leaves that response out."""
    tool_uses: dict[str, int] = msgspec.field(default_factory=dict)
    """Finished tool calls, by tool name."""
    wall_ms: float = 0.0
    """Time spent in turns; a parent's includes its children's, which may overlap."""


class UsageDetail(ParleyStruct):
    """Token usage of one conversation: its own, with its descendants' (`total`),
    its current turn's (descendants included), and the whole session's."""

    turn: UsageTotals
    session: UsageTotals
    conversation: str
    """The `ConversationRef.id` these figures belong to."""
    own: UsageTotals = msgspec.field(default_factory=UsageTotals)
    total: UsageTotals = msgspec.field(default_factory=UsageTotals)
    context_used: int | None = None
    context_size: int | None = None
    model: str | None = None
    turn_ended: bool = False
    """The conversation's turn has ended: these are its final figures, the ones
    a `session/load` replays."""


class SubagentInfo(ParleyStruct):
    """A child conversation as its parent's `subagent` tool call shows it."""

    conversation: ConversationRef
    title: str
    description: str | None = None
    state: str = "running"
    """"running", "requires_action" or "idle", as ACP's child session states."""
    stop_reason: str | None = None
    """Once idle: how the child's work ended (a stop reason, or "error")."""


class ParleyCapabilities(ParleyStruct):
    """Advertised at `agentCapabilities._meta.parley`."""

    version: str
    methods: list[str] = msgspec.field(default_factory=list)
    features: list[str] = msgspec.field(default_factory=list)


class SessionSettings(
    msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True, forbid_unknown_fields=True
):
    """Per-session provider settings a client may pass at `session/new` `_meta.parley`.

    There is deliberately no API key field: keys come from the environment or
    Parley's config, never over the wire (see `session_settings_from_meta`).
    Unknown keys are refused rather than ignored: a misspelt setting that
    silently does nothing is worse than an error naming it.
    """

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    max_output_tokens: _PositiveInt | None = None
    context_size: _PositiveInt | None = None


class ToolCallCancelParams(ParleyStruct):
    """`_parley/toolCall/cancel` params: cancel one running tool call."""

    session_id: SessionId
    tool_call_id: ToolCallId


class ToolCallCancelResult(ParleyStruct):
    """`_parley/toolCall/cancel` result: the call was running and is stopping;
    its `tool_call_update` reports it failed, and the turn goes on."""


_Positive = Annotated[float, msgspec.Meta(gt=0)]


class Budget(ParleyStruct):
    """What a conversation may spend; null: no limit of that kind."""

    cost: _Positive | None = None
    """US dollars, its sub-agents included."""
    responses: _PositiveInt | None = None
    """Model responses, its sub-agents included."""
    seconds: _Positive | None = None
    """Wall time of its own turns."""


class SetBudgetParams(ParleyStruct):
    """`_parley/session/setBudget` params: the budget of one conversation of an
    open session (the root when `conversationId` is null; a child's id is its
    child session id) from now on, replacing the one it had."""

    session_id: SessionId
    budget: Budget
    conversation_id: str | None = None


class SetBudgetResult(ParleyStruct):
    """The budget now in force; a turn that stopped on the old one goes on with
    the next prompt."""

    budget: Budget


class SessionPauseParams(ParleyStruct):
    """`_parley/session/pause` params: hold the running turn at its earliest safe
    point. The model's stream is closed (what it sent is kept); tool calls
    already running finish, unless `cancelRunning`; calls not started yet wait;
    sub-agents pause with it. The turn's `session/prompt` stays open."""

    session_id: SessionId
    cancel_running: bool = False
    reason: str | None = None
    """Why, as the session's state will show it."""


class SessionPauseResult(ParleyStruct):
    """The turn is paused: nothing streams from the model any more. The calls
    in `runningToolCalls` are still finishing."""

    running_tool_calls: list[ToolCallId] = msgspec.field(default_factory=list)


class SessionResumeParams(ParleyStruct):
    """`_parley/session/resume` params: go on from where the turn paused (its
    waiting tool calls run, then the model is called), with `message` joining
    the conversation first if given."""

    session_id: SessionId
    message: list[ContentBlock] | None = None


class SessionResumeResult(ParleyStruct):
    """`stopReason` is set when this request carried to its end a turn paused
    before a restart (no `session/prompt` is open for it); otherwise the
    turn's own `session/prompt` answers, and this is null."""

    stop_reason: str | None = None


class SessionInjectParams(ParleyStruct):
    """`_parley/session/inject` params, shaped like ACP's proposed
    `session/inject`. `steer` adds the message to the running turn at its next
    step boundary (after the current model response or tool results), without
    cancelling anything. `queue` has it wait on the session and become its
    next prompt when the running turn ends (at once if none runs); until a turn
    takes it, it can be listed, replaced and withdrawn (`_parley/session/queue/...`)."""

    session_id: SessionId
    prompt: list[ContentBlock]
    mode: Literal["steer", "queue"] = "steer"


class SessionInjectResult(ParleyStruct):
    """The message's id, as its `user_message_chunk` will carry it when it joins
    (a steer) or opens its turn (a queued message), and as the queue methods
    name it."""

    message_id: str


class QueuedMessage(ParleyStruct):
    """A message waiting in a session's queue to be its next prompt."""

    message_id: str
    prompt: list[ContentBlock]
    origin: Literal["inject", "prompt"] = "inject"
    """How it came: `_parley/session/inject` mode `queue`, or a `session/prompt`
    sent while a turn ran (that request answers with its turn's stop reason)."""


class SessionQueueListParams(ParleyStruct):
    """`_parley/session/queue/list` params: the messages waiting in a session's queue."""

    session_id: SessionId


class SessionQueueListResult(ParleyStruct):
    """The waiting messages, the next to be taken first."""

    messages: list[QueuedMessage] = msgspec.field(default_factory=list)


class SessionQueueReplaceParams(ParleyStruct):
    """`_parley/session/queue/replace` params: a waiting message's new content;
    it keeps its id and its place in the queue."""

    session_id: SessionId
    message_id: str
    prompt: list[ContentBlock]


class SessionQueueReplaceResult(ParleyStruct):
    """The message waits with its new content."""


class SessionQueueWithdrawParams(ParleyStruct):
    """`_parley/session/queue/withdraw` params: take a waiting message out of
    the queue; a queued `session/prompt` then answers `cancelled`."""

    session_id: SessionId
    message_id: str


class SessionQueueWithdrawResult(ParleyStruct):
    """The message is out of the queue: no turn will take it."""


class TurnStatus(ParleyStruct):
    """At `_meta.parley.turn` of a `session_info_update`: the state of the
    session's turn when it changes. `state`: "paused"; "running" (resumed, or
    a turn the queue started); or "idle", when a turn the queue started ends,
    or one paused before a restart is cancelled (no prompt answers it)."""

    state: str
    reason: str | None = None
    """Why it paused; once idle, why the turn stopped early or how it failed."""
    stop_reason: str | None = None
    """Once idle: how the turn ended, a stop reason or "error"."""
    message_id: str | None = None
    """Of the queued message whose turn this is (running, then idle)."""


class SessionForkParams(ParleyStruct):
    """`_parley/session/fork` params: a new session with the history of
    `session_id` up to a message, which goes on unchanged.

    `message_id` names a message of the session's own conversation, as its
    `messageId` came in `session/update`s: the fork ends right before the turn a
    user message started, or right after the turn an agent message is part of.
    Null: from the latest point, the end of the last turn that ended. `cwd`:
    the fork's working directory, the session's by default."""

    session_id: SessionId
    message_id: str | None = None
    cwd: str | None = None


class SessionForkResult(ParleyStruct):
    """`_parley/session/fork` result: the fork, open on this connection as
    `session/new` leaves a session."""

    session_id: SessionId


class ReplayFromStart(ParleyStruct, tag="start", tag_field="type"):
    """Replay the whole session: its history, then the updates of its latest turn."""


class ReplayAfter(ParleyStruct, tag="after", tag_field="type"):
    """Replay the updates numbered after `sequence`, the last one the client saw
    (`_meta.parley.sequence` of a `session/update`)."""

    sequence: int


ReplayFrom = ReplayFromStart | ReplayAfter


class SessionAttachParams(ParleyStruct):
    """`_parley/session/attach` params: take a session onto this connection,
    from the editor that has it if one does (that editor then hears no more of
    it), and send what this client lacks before the answer: nothing
    (`replayFrom` null, as `session/resume`), everything (`start`, as
    `session/load`), or the updates after the last one it saw (`after`), shaped
    like ACP v2's `session/resume` `replayFrom`. A session open nowhere is
    opened as `session/load` opens it, with `mcpServers` and
    `additionalDirectories`; one already open keeps its own."""

    session_id: SessionId
    cwd: str
    replay_from: ReplayFrom | None = None
    mcp_servers: list[McpServer] = msgspec.field(default_factory=list)
    additional_directories: list[str] | None = None


class SessionAttachResult(ParleyStruct):
    """What the answer's replay was: `replayed` is "none", "start" (the whole
    session: an `after` the daemon no longer holds, or a session it had to
    open, is answered so) or "after"; `lastSequence` the number of the last
    update sent before this answer (null if none was numbered), after which
    the live stream goes on; `state` the session's turn: "idle", "running",
    "paused" or "cancelling"."""

    modes: SessionModeState
    replayed: str
    last_sequence: int | None
    state: str


class AttachedElsewhere(ParleyStruct):
    """At `_meta.parley.attachedElsewhere` of the last `session_info_update` an
    editor gets about a session another editor took over with
    `_parley/session/attach`: which one (`editor`, as errors name it)."""

    editor: str


class ListenerAuth(msgspec.Struct, kw_only=True):
    """`initialize` `_meta.parley` from a client of `parleyd --listen tcp://...`:
    the listener's token, read from the 0600 file the daemon names when it
    starts. Stdio and Unix socket connections need none."""

    token: str


class ParleyMeta(msgspec.Struct, omit_defaults=True, kw_only=True):
    """The contents of `_meta.parley` on a message; absent parts are omitted."""

    conversation: ConversationRef | None = None
    usage: UsageDetail | None = None
    subagent: SubagentInfo | None = None


# -- helpers ---------------------------------------------------------------------------

_SECRET_KEYS: Final = frozenset({"apikey", "api_key", "apitoken", "token", "secret", "password"})
# `_meta.parley`'s keys as they are spelt on the wire (camelCase).
_SETTING_KEYS: Final = tuple(field.encode_name for field in msgspec.structs.fields(SessionSettings))


def parley_meta(
    *,
    conversation: ConversationRef | None = None,
    usage: UsageDetail | None = None,
    capabilities: ParleyCapabilities | None = None,
    base: Meta | None = None,
) -> Meta:
    """Build a `_meta` dict `{"parley": {...}}` from Parley's extension Structs.

    `capabilities` is the whole `_meta.parley` of `agentCapabilities`, so it
    cannot be combined with the per-update parts. `base` is an existing `_meta`
    to extend (copied, not mutated); its other keys and any other entries
    already under `parley` are kept.
    """
    meta: Meta = dict(base) if base else {}
    if capabilities is not None:
        if conversation is not None or usage is not None:
            raise ValueError("capabilities go alone in agentCapabilities._meta.parley")
        meta[PARLEY_META_KEY] = msgspec.to_builtins(capabilities)
        return meta
    existing = meta.get(PARLEY_META_KEY)
    parley: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
    parley.update(msgspec.to_builtins(ParleyMeta(conversation=conversation, usage=usage)))
    meta[PARLEY_META_KEY] = parley
    return meta


def read_parley_meta(meta: Meta | None) -> ParleyMeta:
    """Read `_meta.parley` (conversation, usage) from a received message's `_meta`."""
    return _convert_parley(meta, ParleyMeta, where="_meta.parley")


def session_settings_from_meta(meta: Meta | None) -> SessionSettings:
    """Read `SessionSettings` from the `_meta` of a `session/new` request.

    Missing `_meta` or `_meta.parley` gives empty settings. Raises
    `msgspec.ValidationError` naming the offending path, e.g.
    "Expected `int`, got `str` - at `_meta.parley.maxOutputTokens`", and
    refuses API keys outright rather than silently dropping them. An unknown key
    is named with the closest known one: "unknown field `modle` (did you mean
    `model`?) - at `_meta.parley`".
    """
    if meta and isinstance(meta.get(PARLEY_META_KEY), dict):
        for key in meta[PARLEY_META_KEY]:
            if isinstance(key, str) and key.lower().replace("-", "_") in _SECRET_KEYS:
                raise msgspec.ValidationError(
                    f"`_meta.parley.{key}` is not accepted: Parley never takes API keys or "
                    "other secrets over the wire; set them in the environment or Parley's config"
                )
        unknown = [str(key) for key in meta[PARLEY_META_KEY] if key not in _SETTING_KEYS]
        if unknown:
            raise msgspec.ValidationError(
                f"unknown field{'s' if len(unknown) > 1 else ''} "
                f"{describe_unknown(unknown, _SETTING_KEYS, quote='`')} - at `_meta.parley`"
            )
    return _convert_parley(meta, SessionSettings, where="_meta.parley")


def _convert_parley(meta: Meta | None, typ: type[_T], *, where: str) -> _T:
    if meta is None:
        return typ()
    if not isinstance(meta, dict):
        raise msgspec.ValidationError(
            f"Expected `object`, got `{type(meta).__name__}` - at `_meta`"
        )
    raw = meta.get(PARLEY_META_KEY)
    if raw is None:
        return typ()
    try:
        return msgspec.convert(raw, typ)
    except msgspec.ValidationError as exc:
        message = str(exc)
        # msgspec reports paths from the converted object's root as `$...`.
        message = message.replace("`$`", f"`{where}`").replace("`$", f"`{where}")
        if "- at `" not in message:
            message = f"{message} - at `{where}`"
        raise msgspec.ValidationError(message) from None


__all__ = [
    "EXTENSION_METHODS",
    "PARLEY_META_KEY",
    "SESSION_ATTACH",
    "SESSION_FORK",
    "SESSION_INJECT",
    "SESSION_PAUSE",
    "SESSION_QUEUE_LIST",
    "SESSION_QUEUE_REPLACE",
    "SESSION_QUEUE_WITHDRAW",
    "SESSION_RESUME",
    "SESSION_SET_BUDGET",
    "TOOL_CALL_CANCEL",
    "AttachedElsewhere",
    "Budget",
    "ConversationRef",
    "ListenerAuth",
    "ParleyCapabilities",
    "ParleyMeta",
    "ParleyStruct",
    "QueuedMessage",
    "ReplayAfter",
    "ReplayFrom",
    "ReplayFromStart",
    "SessionAttachParams",
    "SessionAttachResult",
    "SessionForkParams",
    "SessionForkResult",
    "SessionInjectParams",
    "SessionInjectResult",
    "SessionPauseParams",
    "SessionPauseResult",
    "SessionQueueListParams",
    "SessionQueueListResult",
    "SessionQueueReplaceParams",
    "SessionQueueReplaceResult",
    "SessionQueueWithdrawParams",
    "SessionQueueWithdrawResult",
    "SessionResumeParams",
    "SessionResumeResult",
    "SessionSettings",
    "SetBudgetParams",
    "SetBudgetResult",
    "SubagentInfo",
    "ToolCallCancelParams",
    "ToolCallCancelResult",
    "TurnStatus",
    "UsageDetail",
    "UsageTotals",
    "parley_meta",
    "read_parley_meta",
    "session_settings_from_meta",
]
