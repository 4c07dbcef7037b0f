"""What a client saw of a session tree, conversation by conversation, and
what a `session/load` replay must be once the daemon died in the middle of it.

The daemon writes a record, then the updates it implies; the deltas of a
response stream before their `response` record. So after a SIGKILL the log
holds everything up to the last record written, the replay of each
conversation is what the client saw up to that point followed by the
closing a load adds (each open call answered as interrupted, each open turn
ended, each open child idle as `_interrupted`), and the one thing a client may
have seen that no replay has is what a response still streaming when the
daemon died sent after its last checkpoint. The updates a record implies reach
the client only once the record is down, so the client always knows how far
the log at least got; and a replay may hold what the daemon recorded in its
last instant, its updates still in its output buffer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from parleyd.session.replay import INTERRUPTED_CALL
from tests.support.updates import as_replayed

Note = dict[str, Any]
Update = dict[str, Any]

_CHUNKS = frozenset({"agent_message_chunk", "agent_thought_chunk", "user_message_chunk"})
_FINISHED = frozenset({"completed", "failed"})
_TOOL_CALLS = frozenset({"tool_call", "tool_call_update"})
# What a call's later updates change; the rest was settled when it was announced.
_CALL_PROGRESS = frozenset({"status", "content", "rawOutput", "locations"})
INTERRUPTED_CHILD = "_interrupted"


def session_notes(frames: list[dict[str, Any]]) -> list[Note]:
    """The `session/update` params among frames that tell of a conversation, in order."""
    return [f["params"] for f in frames if is_conversation_update(f)]


def is_conversation_update(frame: dict[str, Any]) -> bool:
    """A `session/update` of the conversation: not the slash commands a session
    is told of on every open, which no replay repeats."""
    return (
        frame.get("method") == "session/update"
        and frame["params"]["update"]["sessionUpdate"] != "available_commands_update"
    )


def conversation_of(update: Update) -> dict[str, Any]:
    conversation: dict[str, Any] = update["_meta"]["parley"]["conversation"]
    return conversation


def child_state(update: Update) -> tuple[str, dict[str, Any]] | None:
    """The child and its state, if the update tells one: a `subagent_update`
    to a client that takes child sessions, `_meta.parley.subagent` on the
    parent's tool call to one that does not."""
    if update["sessionUpdate"] == "subagent_update":
        state: dict[str, Any] = update["state"]
        return update["sessionId"], state
    info = update["_meta"]["parley"].get("subagent")
    if info is None:
        return None
    state = {"state": info["state"]}
    if info.get("stopReason") is not None:
        state["stopReason"] = info["stopReason"]
    return info["conversation"]["id"], state


def interrupted(state: dict[str, Any]) -> bool:
    """A child's state: its turn was closed by a load, the daemon having died in it."""
    return state["state"] == "idle" and state.get("stopReason") == INTERRUPTED_CHILD


def _finished_call(update: Update) -> str | None:
    """The call an update ends: its last `tool_call_update`, or, in a replay,
    the `tool_call` its updates were folded into."""
    if update["sessionUpdate"] in _TOOL_CALLS and update.get("status") in _FINISHED:
        call: str = update["toolCallId"]
        return call
    return None


@dataclass
class SessionTrees:
    """The root session each session belongs to, learnt from the children's
    announcements as the frames arrive."""

    roots: dict[str, str] = field(default_factory=dict)

    def add_root(self, session_id: str) -> None:
        self.roots[session_id] = session_id

    def observe(self, frame: dict[str, Any]) -> None:
        if frame.get("method") != "session/update":
            return
        note = frame["params"]
        if (state := child_state(note["update"])) is not None:
            self.roots.setdefault(state[0], self.roots[note["sessionId"]])

    def root_of(self, session_id: str) -> str:
        return self.roots[session_id]

    def of_root(self, notes: list[Note], root: str) -> list[Note]:
        return [note for note in notes if self.roots.get(note["sessionId"]) == root]


def per_conversation(notes: list[Note]) -> dict[str, list[Update]]:
    """Each conversation's updates, merged as a replay merges them; without
    the root's prompt, which the client sent itself and only a replay shows,
    and without the states of a child waiting for the user and given its
    answer, which only the live stream has."""
    grouped: dict[str, list[Update]] = defaultdict(list)
    announced: set[str] = set()
    for note in notes:
        update = note["update"]
        conversation = conversation_of(update)
        if conversation["depth"] == 0 and update["sessionUpdate"] == "user_message_chunk":
            continue
        state = child_state(update)
        if state is not None:
            child, value = state
            if value["state"] == "requires_action" or (
                value["state"] == "running" and child in announced
            ):
                continue
            announced.add(child)
        grouped[conversation["id"]].append(update)
    return {conversation: as_replayed(updates) for conversation, updates in grouped.items()}


def _durable(update: Update) -> bool:
    """Sent only once its record was written: everything but what streams
    ahead of a `response` record (its deltas, its calls as they appear with
    their title and input), so a call that has a status past `pending` is."""
    kind = update["sessionUpdate"]
    if kind in ("agent_message_chunk", "agent_thought_chunk"):
        return False
    if kind in _TOOL_CALLS and child_state(update) is None:
        return update.get("status") not in (None, "pending")
    return True


def _closing(update: Update) -> bool:
    """What a load adds to close a turn the daemon died in."""
    if update["sessionUpdate"] == "usage_update":
        return True
    state = child_state(update)
    if state is not None:
        return interrupted(state[1])
    content = update.get("content") or [{}]
    return (
        _finished_call(update) is not None
        and update["status"] == "failed"
        and content[0].get("content", {}).get("text") == INTERRUPTED_CALL
    )


def _continues(replayed: Update, seen: Update) -> bool:
    """The replayed update is where the seen one went on: a chunk with the
    deltas that followed it, a call the client saw unfinished with its end
    (live, or the closing a load gave it)."""
    kind = seen["sessionUpdate"]
    if kind != replayed["sessionUpdate"]:
        return False
    if kind in _CHUNKS:
        # Or stopped short of it: a response still streaming is kept as far as
        # its last checkpoint.
        texts = replayed["content"]["text"], seen["content"]["text"]
        return replayed.get("messageId") == seen.get("messageId") and (
            texts[0].startswith(texts[1]) or texts[1].startswith(texts[0])
        )
    return (
        kind in _TOOL_CALLS
        and seen.get("status") not in _FINISHED
        and child_state(seen) is None
        and all(replayed.get(k) == v for k, v in seen.items() if k not in _CALL_PROGRESS)
    )


def check_replay_after_crash(seen: list[Note], replayed: list[Note]) -> dict[str, list[Update]]:
    """Each conversation's replay is what the client saw, up to at least the
    last update that a record stood behind, then only the closing; a replay
    may know more than the client only where it saw all of a conversation:
    what the daemon had recorded but not yet written out when it died, which
    is returned, conversation by conversation."""
    live, again = per_conversation(seen), per_conversation(replayed)
    assert set(live) <= set(again), f"conversations not replayed: {set(live) - set(again)}"
    unseen_of: dict[str, list[Update]] = {}
    for conversation, replay in again.items():
        shown = live.get(conversation, [])
        common = 0
        # What the client saw last of a message or a call may have gone on in
        # updates still in the daemon's buffer, or been closed by the load.
        while common < min(len(shown), len(replay)) and (
            replay[common] == shown[common] or _continues(replay[common], shown[common])
        ):
            common += 1
        durable = max((i + 1 for i, u in enumerate(shown) if _durable(u)), default=0)
        assert common >= durable, (
            f"conversation {conversation}: the replay lost what the client saw answered: "
            f"live {shown[common]!r}, replayed {replay[common] if common < len(replay) else None!r}"
        )
        tail = replay[common:]
        unseen = [update for update in tail if not _closing(update)]
        assert common == len(shown) or not unseen, (
            f"conversation {conversation}: past what the client last saw recorded, the replay "
            f"has more than the closing: {unseen!r}"
        )
        unseen_of[conversation] = unseen
    return unseen_of


def check_answered_kept(seen: list[Note], replayed: list[Note]) -> None:
    """Every call the client saw finish, every response it saw complete and
    every child it saw announced is in the replay, as the client saw it."""
    live, again = per_conversation(seen), per_conversation(replayed)
    for conversation, shown in live.items():
        replay = again.get(conversation, [])
        last_durable = max((i for i, u in enumerate(shown) if _durable(u)), default=-1)
        for position, update in enumerate(shown):
            finished = _finished_call(update) is not None
            completed = update["sessionUpdate"] in _CHUNKS and position < last_durable
            if finished or completed or child_state(update) is not None:
                assert update in replay, f"conversation {conversation}: not replayed: {update!r}"


def _endings(notes: list[Note]) -> dict[str, Update]:
    """Child id -> the update that ended its turn."""
    return {
        state[0]: note["update"]
        for note in notes
        if (state := child_state(note["update"])) is not None and state[1]["state"] == "idle"
    }


def check_open_children_interrupted(
    seen: list[Note], replayed: list[Note], unseen: dict[str, list[Update]]
) -> None:
    """A child whose end the client never saw ends in the replay as
    interrupted, unless the daemon recorded its end just before it died."""
    ended_live = _endings(seen)
    for child, ending in _endings(replayed).items():
        state = child_state(ending)
        assert state is not None
        if child not in ended_live and ending not in unseen[conversation_of(ending)["id"]]:
            assert interrupted(state[1]), f"child {child} ended as {ending!r}"


def check_closed_once(replayed: list[Note]) -> None:
    """In the replay every tool call ends once, every child goes idle once,
    and every message shows once, in one place."""
    finished: Counter[tuple[str, str]] = Counter()
    started: set[tuple[str, str]] = set()
    idle: Counter[str] = Counter()
    children: set[str] = set()
    runs: list[str] = []
    previous: tuple[str, str] | None = None
    for note in replayed:
        update = note["update"]
        conversation = conversation_of(update)["id"]
        if update["sessionUpdate"] == "tool_call":
            started.add((conversation, update["toolCallId"]))
        if (call := _finished_call(update)) is not None:
            finished[(conversation, call)] += 1
        if (state := child_state(update)) is not None:
            children.add(state[0])
            idle[state[0]] += state[1]["state"] == "idle"
        message = update.get("messageId") if update["sessionUpdate"] in _CHUNKS else None
        if message is not None and (conversation, message) != previous:
            runs.append(message)
        previous = None if message is None else (conversation, message)
    assert finished.keys() == started, f"calls without one result: {started ^ finished.keys()}"
    assert max(finished.values(), default=1) == 1, f"calls ended twice: {finished}"
    not_ended_once = {child: idle[child] for child in children if idle[child] != 1}
    assert not not_ended_once, f"children not idle exactly once (child: times): {not_ended_once}"
    assert len(runs) == len(set(runs)), f"messages replayed twice: {runs}"


def check_tree_order(notes: list[Note], root: str, *, child_sessions: bool) -> None:
    """Every child is announced on its parent before any of its own traffic,
    which goes to its own session for a client that takes child sessions."""
    parents: dict[str, str] = {}
    for note in notes:
        update = note["update"]
        conversation = conversation_of(update)
        if conversation["depth"] > 0:
            child = conversation["id"]
            assert parents.get(child) == conversation["parent"], f"{child} before its announcement"
        expected_session = conversation["id"] if child_sessions and conversation["depth"] else root
        assert note["sessionId"] == expected_session, f"misattributed: {note!r}"
        if (state := child_state(update)) is not None:
            parents.setdefault(state[0], conversation["id"])
