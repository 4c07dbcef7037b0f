"""The lines of a session's `log.jsonl`: one Struct per record type.

Every line carries `seq` (its position in the log), `conv` (the conversation it
belongs to: the session's root conversation has an id like any other, so
sub-conversations need no new format), `ts`, and `turn`, the id of the turn
that wrote it (none for the records that set a session up). A conversation's
`conversation` record is written before any record of its own or of its
children.

A fork's log holds only its own records: its `session` record, then
`forked_from` naming the session and seq its history comes from; reading it
yields that history first (see `fork.py`).

Format versions: 1 (Parley 0.1's first release) stored an assistant response
as flat text, thinking and tool-call fields plus every streamed delta, and had
no turn records. 2 stores a response as its ordered parts and brackets each
turn with `turn_start` / `turn_end`. Version 1 lines are read by the legacy
Structs in `migrate.py` and converted on read; nothing is ever dropped for
being old. Fields added within a version are optional, and a reader that does
not know one still reads the line: a tool result's `blobs` (its texts too long
for a line, kept in the session's `blobs/` folder; see `blobs.py`) reads there
as the previews the line holds in their place.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from parleyd.providers.messages import AssistantMessage, Part

FORMAT_VERSION = 2


class Record(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    seq: int = 0
    conv: str = ""
    ts: float = 0.0
    turn: str | None = None


class SessionStarted(Record, tag="session"):
    session_id: str
    cwd: str
    settings: dict[str, Any]
    version: int = FORMAT_VERSION


class ConversationStarted(Record, tag="conversation"):
    """A conversation begins: the root one with its session, a child (a
    subagent) when its parent's `subagent` tool call starts it."""

    parent: str | None = None
    parent_tool_call: str | None = None
    depth: int = 0
    title: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: list[str] | None = None


class TitleSet(Record, tag="title"):
    title: str


class ArchiveSet(Record, tag="archive"):
    """`session/archive` (True) or `session/unarchive` (False): the last one holds."""

    archived: bool


class TurnStarted(Record, tag="turn_start"):
    """A prompt turn begins; every record it writes carries its id in `turn`."""


class UserTurn(Record, tag="user"):
    """`text` is what the model reads; `content` the ACP blocks as the client
    sent them. A turn's first opens it (and takes the queued message of the
    same `message_id`, if one waits); later ones were injected into it (a
    steer, or the message a resume added) where they stand."""

    text: str
    content: list[dict[str, Any]]
    message_id: str


class TurnPaused(Record, tag="turn_pause"):
    """The session's turn (written on the root conversation) holds until a
    `turn_resume`: also across a restart, when a load keeps its open turns
    open instead of closing them as interrupted."""

    reason: str | None = None


class TurnResumed(Record, tag="turn_resume"):
    """The paused turn goes on."""


QueueOrigin = Literal["inject", "prompt"]


class MessageQueued(Record, tag="queue"):
    """A message waits in the session's queue (written on the root
    conversation, outside any turn) to be its next prompt: sent with
    `_parley/session/inject` mode `queue`, or as a `session/prompt` while a
    turn ran (`origin`). It waits until the `user` record of the turn that
    takes it, which carries the same `message_id`, or a `queue_withdraw`."""

    text: str
    content: list[dict[str, Any]]
    message_id: str
    origin: QueueOrigin = "inject"


class QueuedReplaced(Record, tag="queue_replace"):
    """The waiting message `message_id` has new words; it keeps its place."""

    text: str
    content: list[dict[str, Any]]
    message_id: str


class QueuedWithdrawn(Record, tag="queue_withdraw"):
    """The waiting message `message_id` left the queue untaken."""

    message_id: str


class ToolCallView(msgspec.Struct, frozen=True):
    """How a tool call was shown to the client, kept for faithful replay."""

    call_id: str
    title: str
    kind: str


class AssistantResponse(Record, tag="response"):
    """One model response, as its ordered parts. `interrupted`: cut short by a
    cancel or a failure; what streamed until then is kept."""

    message: AssistantMessage
    message_id: str
    model: str
    tool_views: list[ToolCallView] = []
    # Calls the client saw start whose arguments never finished streaming.
    abandoned_calls: list[ToolCallView] = []
    interrupted: bool = False
    # Call id -> how many parts the response had when the call was announced:
    # where its `tool_call` goes in a replay (several calls may start before
    # the first one's arguments are complete).
    call_starts: dict[str, int] = {}


class ResponseStreamed(Record, tag="response_progress"):
    """What a response still streaming added since its previous checkpoint, so
    a daemon killed mid-response loses at most its last moments: `parts` are
    the new parts, the first continuing the last part checkpointed before when
    `extends_last`. The response's `response` record, once written (also when
    it is cut short), supersedes every checkpoint of the same message."""

    message_id: str
    model: str
    parts: tuple[Part, ...] = ()
    extends_last: bool = False
    # The calls announced since the previous checkpoint, as in `response`.
    tool_views: list[ToolCallView] = []
    call_starts: dict[str, int] = {}


class ToolStarted(Record, tag="tool_start"):
    """A tool call starts running (permission given): where its `in_progress`
    goes in a replay, among what other conversations and calls streamed."""

    call_id: str


ToolStatus = Literal["completed", "failed", "cancelled"]


class ToolOutcome(Record, tag="tool_result"):
    call_id: str
    name: str
    status: ToolStatus
    output: str
    # What the client is shown, as ACP tool-call content; the images, audio and
    # files among it are the model's too (see `message`).
    content: list[dict[str, Any]] = []
    locations: list[str] = []
    duration_ms: float = 0.0
    # Whether the tool started (a declined call never does), and the partial
    # output it streamed while running, for a faithful replay.
    ran: bool = False
    progress: list[str] = []
    # The conversation's plan as the call left it (ACP plan entries), if it set one.
    plan: list[dict[str, Any]] | None = None
    # Where texts too long for the line stood (JSON Pointers such as "/output")
    # and the digests of the blobs holding them; reading puts them back.
    blobs: dict[str, str] = {}


class UsageRecorded(Record, tag="usage"):
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    context_used: int = 0
    context_size: int = 0


class BudgetSet(Record, tag="budget"):
    """The conversation's budget from now on (None: no limit of that kind)."""

    cost: float | None = None
    responses: int | None = None
    seconds: float | None = None


class BudgetReached(Record, tag="budget_reached"):
    """A turn of this record's conversation stopped before a model call: the
    budget `limit` of conversation `owner` (itself or an ancestor) was spent."""

    owner: str
    limit: str
    allowed: float
    used: float
    message: str


class CompactionStarted(Record, tag="compaction_start"):
    """The conversation's older history is being summarised, for `reason`."""

    compaction_id: str
    reason: str


CompactionStatus = Literal["completed", "failed", "cancelled"]


class Compacted(Record, tag="compaction"):
    """How a compaction ended. Completed: from here on the model reads
    `summary` in place of all but the last `kept` messages of the history (the
    records before stay as they are). `context_estimate`: the tokens the model
    reads now, roughly, until its next response says exactly."""

    compaction_id: str
    status: CompactionStatus
    summary: str | None = None
    kept: int = 0
    context_estimate: int = 0
    error: str | None = None


class PermissionRemembered(Record, tag="permission"):
    """An "always" answer: it holds for the rest of the session, across loads,
    for this tool, or with `command_prefix` for its commands of that prefix
    only (see `tools/command_prefix.py`)."""

    tool: str
    allowed: bool
    command_prefix: str | None = None


class ModeSet(Record, tag="mode"):
    """`session/set_mode`: the session's permission mode from now on, by its
    ACP mode id; before the first one, the mode is `ask`."""

    mode: str


# How a turn ended: ACP's stop reasons, `error` for a failure, and
# `interrupted` for a turn the daemon never finished (closed on the next load).
TurnEnding = Literal[
    "end_turn", "max_tokens", "max_turn_requests", "refusal", "cancelled", "error", "interrupted"
]


class TurnEnded(Record, tag="turn_end"):
    stop_reason: TurnEnding
    error: str | None = None


class ForkedFrom(Record, tag="forked_from"):
    """This session is a fork: its history begins with the records of session
    `session_id` up to `up_to_seq`, which are read from there, not copied (see
    `fork.py`). Written second, right after the fork's `session` record, with
    the seq after `up_to_seq`: seqs go on rising across the two logs."""

    session_id: str
    up_to_seq: int


CurrentRecord = (
    SessionStarted
    | ConversationStarted
    | TitleSet
    | TurnStarted
    | UserTurn
    | AssistantResponse
    | ResponseStreamed
    | ToolStarted
    | ToolOutcome
    | UsageRecorded
    | PermissionRemembered
    | ModeSet
    | BudgetSet
    | BudgetReached
    | CompactionStarted
    | Compacted
    | TurnPaused
    | TurnResumed
    | MessageQueued
    | QueuedReplaced
    | QueuedWithdrawn
    | TurnEnded
    | ArchiveSet
    | ForkedFrom
)
