"""Token, cost, tool and time accounting: per conversation, rolled up to
every ancestor, per turn and per session.

The live turn and the replay of a loaded session feed the same ledger with the
same records, so a reloaded session reports the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley_protocol.parley import UsageDetail
from parley_protocol.parley import UsageTotals as WireUsageTotals
from parleyd.store.records import (
    Compacted,
    ConversationStarted,
    Record,
    ToolOutcome,
    TurnEnded,
    TurnStarted,
    UsageRecorded,
    UserTurn,
)


@dataclass
class UsageTotals:
    responses: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # The cost of the responses whose model has a known price; `priced` is
    # False once a response without one is counted.
    cost: float | None = None
    priced: bool = True
    tool_uses: dict[str, int] = field(default_factory=dict)
    wall_ms: float = 0.0

    def add_response(self, record: UsageRecorded) -> None:
        self.responses += 1
        self.input_tokens += record.input_tokens
        self.output_tokens += record.output_tokens
        self.cached_input_tokens += record.cached_input_tokens
        self.cache_write_tokens += record.cache_write_tokens
        self.reasoning_tokens += record.reasoning_tokens
        if record.cost is None:
            self.priced = False
        else:
            self.cost = round((self.cost or 0.0) + record.cost, 8)

    def add_tool_use(self, name: str) -> None:
        self.tool_uses[name] = self.tool_uses.get(name, 0) + 1

    def wire(self) -> WireUsageTotals:
        return WireUsageTotals(
            responses=self.responses,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
            cost=self.cost,
            currency=None if self.cost is None else "USD",
            priced=self.priced,
            tool_uses=dict(self.tool_uses),
            wall_ms=round(self.wall_ms, 3),
        )


@dataclass
class ConversationUsage:
    """One conversation's figures: its own, with its descendants' (`total`),
    and its current turn's (descendants included)."""

    own: UsageTotals = field(default_factory=UsageTotals)
    total: UsageTotals = field(default_factory=UsageTotals)
    turn: UsageTotals = field(default_factory=UsageTotals)
    # The context window as of the conversation's latest response.
    context_used: int = 0
    context_size: int = 0
    model: str | None = None
    turn_started: float | None = None


class UsageLedger:
    """The usage of every conversation of a session, rolled up to the root.

    It reads the session's records, live as they are appended and in order on a
    load, so a reloaded session reports exactly the figures it streamed.
    """

    def __init__(self) -> None:
        self._usage: dict[str, ConversationUsage] = {}
        self._parents: dict[str, str | None] = {}
        self.root: str | None = None

    def adopt(self, conversation: str, parent: str | None) -> None:
        """Know a conversation, and whose totals it counts into."""
        self._parents[conversation] = parent
        self.of(conversation)
        if parent is None and self.root is None:
            self.root = conversation

    def of(self, conversation: str) -> ConversationUsage:
        usage = self._usage.get(conversation)
        if usage is None:  # built only once: a load asks for every record
            usage = self._usage[conversation] = ConversationUsage()
        return usage

    def lineage(self, conversation: str) -> list[str]:
        """The conversation, its parent, ..., the root."""
        chain = [conversation]
        while (parent := self._parents.get(chain[-1])) is not None and parent not in chain:
            chain.append(parent)
        return chain

    @property
    def session(self) -> UsageTotals:
        return self.of(self.root).total if self.root else UsageTotals()

    def observe(self, record: Record) -> bool:
        """Count what a record says, in its conversation and every ancestor;
        True if that changed their figures."""
        match record:
            case ConversationStarted():
                self.adopt(record.conv, record.parent)
            case TurnStarted():
                usage = self.of(record.conv)
                usage.turn = UsageTotals()
                usage.turn_started = record.ts
            case UserTurn() if record.turn is None:
                # Format 1 logs have no turn records: a prompt starts a turn.
                self.of(record.conv).turn = UsageTotals()
            case UsageRecorded():
                usage = self.of(record.conv)
                usage.own.add_response(record)
                usage.context_used, usage.context_size = record.context_used, record.context_size
                usage.model = record.model
                for usage in self._lineage_usage(record.conv):
                    usage.total.add_response(record)
                    usage.turn.add_response(record)
                return True
            case Compacted() if record.status == "completed":
                self.of(record.conv).context_used = record.context_estimate
            case ToolOutcome():
                self.of(record.conv).own.add_tool_use(record.name)
                for usage in self._lineage_usage(record.conv):
                    usage.total.add_tool_use(record.name)
                    usage.turn.add_tool_use(record.name)
                return True
            case TurnEnded():
                usage = self.of(record.conv)
                if usage.turn_started is None:  # format 1: no turn_start to time it from
                    return False
                wall_ms = max(record.ts - usage.turn_started, 0.0) * 1000
                usage.turn_started = None
                usage.own.wall_ms += wall_ms
                for usage in self._lineage_usage(record.conv):
                    usage.total.wall_ms += wall_ms
                    usage.turn.wall_ms += wall_ms
                return True
        return False

    def seconds_in_turns(self, conversation: str, now: float) -> float:
        """The conversation's own time in turns, the running one up to `now`."""
        usage = self.of(conversation)
        running = 0.0 if usage.turn_started is None else max(now - usage.turn_started, 0.0)
        return usage.own.wall_ms / 1000 + running

    def _lineage_usage(self, conversation: str) -> list[ConversationUsage]:
        return [self.of(conv) for conv in self.lineage(conversation)]

    def detail(self, conversation: str, *, turn_ended: bool = False) -> UsageDetail:
        """`_meta.parley.usage` of one conversation."""
        usage = self.of(conversation)
        return UsageDetail(
            turn_ended=turn_ended,
            turn=usage.turn.wire(),
            session=self.session.wire(),
            conversation=conversation,
            own=usage.own.wire(),
            total=usage.total.wire(),
            context_used=usage.context_used,
            context_size=usage.context_size,
            model=usage.model,
        )
