"""Crash consistency: a daemon running three sessions at once (turns with
tools and nested, parallel children; one child telling a long story, one
asking a permission question nobody answers, one writing once allowed) is
killed with SIGKILL at a random moment, and a fresh daemon loads every
session: nothing the client saw answered is lost, nothing is doubled, every
open call and child turn is closed as interrupted, each conversation replays
as the client saw it up to the last record, and each session takes a new
prompt. For a client that takes child sessions (checked against ACP's
unstable schema) and for one that does not.

Where exactly it dies is drawn from a seeded random generator: the seed is in
the test id, and `PARLEY_CRASH_SEEDS=7,8,9` runs others. A moment too brief
to hit at random (between a child's first record and its turn's) is made
by cutting the log of a killed daemon there.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from parleyd.store.log import LOG_NAME
from tests.support.acp_conformance import FrameChecker
from tests.support.daemon import offline_env
from tests.support.raw_daemon import RawDaemon, raw_daemon
from tests.support.transcripts import (
    SessionTrees,
    check_answered_kept,
    check_closed_once,
    check_open_children_interrupted,
    check_replay_after_crash,
    check_tree_order,
    conversation_of,
    is_conversation_update,
    per_conversation,
    session_notes,
)


@dataclass(frozen=True)
class Scenario:
    name: str
    prompt: str
    # Whether the client allows what this session's children ask to do.
    allows: bool


SCENARIOS = (
    Scenario("story", 'Delegate "Tell me a long story" and "delegate `list the files`"', True),
    Scenario(
        "question", 'Delegate "write a note saying hi" and "Read README.md and summarize it"', False
    ),
    Scenario(
        "tree",
        'Delegate "Read README.md and summarize it" and "delegate `list the files`" '
        'and "write a note saying done"',
        True,
    ),
)
# A model call on the loaded history, answered at once ("tok tok tok ").
AFTER_LOAD = "bench 3"


@dataclass
class Run:
    """What the client knows of the running daemon."""

    scenarios: dict[str, Scenario] = field(default_factory=dict)  # by root session id
    trees: SessionTrees = field(default_factory=SessionTrees)
    question_held: bool = False

    def scenario_of(self, frame: dict[str, Any]) -> Scenario:
        return self.scenarios[self.trees.root_of(frame["params"]["sessionId"])]


Matcher = Callable[[dict[str, Any], Run], bool]


def _update(frame: dict[str, Any]) -> dict[str, Any] | None:
    if frame.get("method") != "session/update":
        return None
    update: dict[str, Any] = frame["params"]["update"]
    return update


def _child_chunk_of_story(frame: dict[str, Any], run: Run) -> bool:
    update = _update(frame)
    return (
        update is not None
        and update["sessionUpdate"] == "agent_message_chunk"
        and conversation_of(update)["depth"] > 0
        and run.scenario_of(frame).name == "story"
    )


def _while_the_question_waits(frame: dict[str, Any], run: Run) -> bool:
    return run.question_held


def _tool_finished_in_tree(frame: dict[str, Any], run: Run) -> bool:
    update = _update(frame)
    return (
        update is not None
        and update.get("status") in ("completed", "failed")
        and run.scenario_of(frame).name == "tree"
    )


def _any_frame(frame: dict[str, Any], run: Run) -> bool:
    return True


# Kill on the n-th frame a matcher takes, n drawn from its range: every range
# ends well before the frames run out (the story goes on for seconds, and the
# question is never answered).
KILL_POINTS: dict[str, tuple[Matcher, int, int]] = {
    # One of the story session's children is streaming.
    "child-stream": (_child_chunk_of_story, 1, 120),
    # A child waits for the user's answer while the other sessions go on.
    "permission": (_while_the_question_waits, 1, 150),
    # A call has just finished: its result recorded, the next response not yet.
    "between-tools": (_tool_finished_in_tree, 1, 7),
    "any-frame": (_any_frame, 1, 900),
}
CASES = [
    ("child-stream", True),
    ("permission", True),
    ("between-tools", True),
    ("any-frame", False),
]
SEEDS = [int(seed) for seed in os.environ.get("PARLEY_CRASH_SEEDS", "1").split(",")]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Crashes\n\nAbout dying mid-turn.\n")
    return root


async def _open(daemon: RawDaemon, *, child_sessions: bool) -> None:
    daemon.checker = FrameChecker(unstable=child_sessions)
    capabilities: dict[str, Any] = {"subagents": {}} if child_sessions else {}
    answer = await daemon.request(
        "initialize", {"protocolVersion": 1, "clientCapabilities": capabilities}
    )
    assert "result" in answer


async def _answer(daemon: RawDaemon, ask: dict[str, Any]) -> None:
    outcome = {"outcome": "selected", "optionId": "allow_once"}
    await daemon.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"outcome": outcome}})


async def _run_until_killed(
    daemon: RawDaemon, workspace: Path, kill_on: Matcher, count: int
) -> Run:
    """Start every scenario, answer or hold their questions, and SIGKILL the
    daemon on the `count`-th frame `kill_on` takes; then read what it had
    written before it died."""
    run = Run()
    for scenario in SCENARIOS:
        answer = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
        run.scenarios[answer["result"]["sessionId"]] = scenario
        run.trees.add_root(answer["result"]["sessionId"])
    for number, (root, scenario) in enumerate(run.scenarios.items()):
        await daemon.start_prompt(root, scenario.prompt, number)
    taken = 0
    while taken < count:
        # Checked afterwards: checking every delta as it comes would slow
        # the client, and so move the moment it kills the daemon.
        frame = await daemon.receive(check=False)
        run.trees.observe(frame)
        if frame.get("method") == "session/request_permission":
            if run.scenario_of(frame).allows:
                await _answer(daemon, frame)
            else:
                run.question_held = True
        taken += kill_on(frame, run)
    daemon.process.send_signal(signal.SIGKILL)
    await daemon.process.wait()
    # Whatever reached the pipe reached the client; a last frame cut short did not.
    with contextlib.suppress(EOFError, json.JSONDecodeError):
        while True:
            run.trees.observe(await daemon.receive(check=False))
    for frame in _to_check(daemon.frames):
        daemon.checker.received(frame)
    return run


def _to_check(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frames received since the prompts, one update of each shape: the
    hundreds of deltas and usage figures differ only in their values."""
    first = next(n for n, f in enumerate(frames) if is_conversation_update(f))
    sample: list[dict[str, Any]] = []
    shapes: set[tuple[object, ...]] = set()
    for frame in frames[first:]:
        update = _update(frame)
        if update is not None:
            parley = update["_meta"]["parley"]
            shape = (update["sessionUpdate"], *sorted(update), update.get("status"), *parley)
            if shape in shapes:
                continue
            shapes.add(shape)
        sample.append(frame)
    return sample


async def _load_each(
    daemon: RawDaemon, roots: Iterable[str], workspace: Path, *, check: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """Root session id -> the updates its `session/load` replayed."""
    replays = {}
    for number, root in enumerate(roots):
        before, request_id = len(daemon.frames), 200 + number
        params = {"sessionId": root, "cwd": str(workspace), "mcpServers": []}
        await daemon.send(
            {"jsonrpc": "2.0", "id": request_id, "method": "session/load", "params": params}
        )
        while "method" in (loaded := await daemon.receive(check=check)):
            pass
        assert loaded["id"] == request_id and "modes" in loaded["result"], (root, loaded)
        replays[root] = session_notes(daemon.frames[before:])
    return replays


def _answer_text(frames: list[dict[str, Any]], root: str) -> str:
    return "".join(
        f["params"]["update"]["content"]["text"]
        for f in frames
        if f.get("method") == "session/update"
        and f["params"]["sessionId"] == root
        and f["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
    )


@pytest.mark.parametrize(
    ("point", "child_sessions", "seed"),
    [
        pytest.param(
            point,
            child_sessions,
            seed,
            id=f"{point}-{'child-sessions' if child_sessions else 'meta-only'}-seed={seed}",
        )
        for seed in SEEDS
        for point, child_sessions in CASES
    ],
)
async def test_a_daemon_killed_mid_tree_loads_every_session_consistently(
    tmp_path: Path, workspace: Path, point: str, child_sessions: bool, seed: int
) -> None:
    kill_on, low, high = KILL_POINTS[point]
    count = random.Random(f"{point}/{seed}").randint(low, high)
    print(f"kill point {point!r}: frame {count} it takes (seed {seed})")
    env = offline_env(tmp_path / "home")
    # The fresh daemon starts beside the one that dies, so its start-up is not
    # waited for; it touches the sessions only once the other is dead.
    async with raw_daemon(env) as dying, raw_daemon(env) as daemon:
        await _open(dying, child_sessions=child_sessions)
        run = await _run_until_killed(dying, workspace, kill_on, count)
        live = session_notes(dying.frames)
        print({scenario.name: root for root, scenario in run.scenarios.items()})

        await _open(daemon, child_sessions=child_sessions)
        replays = await _load_each(daemon, run.scenarios, workspace)
        # Each session goes on from its closed history, all at once.
        before = len(daemon.frames)
        prompts = {100 + n: root for n, root in enumerate(run.scenarios)}
        for request_id, root in prompts.items():
            await daemon.start_prompt(root, AFTER_LOAD, request_id)
        for _ in prompts:
            answer = await daemon.until(lambda f: f.get("id") in prompts and "method" not in f)
            assert answer["result"] == {"stopReason": "end_turn"}, answer
        after_load = daemon.frames[before:]
        # Read from the log once more: the closing was written once, the new
        # turn after it. (Equal to what was checked, so checked already.)
        replays_again = await _load_each(daemon, run.scenarios, workspace, check=False)

    for root, scenario in run.scenarios.items():
        seen, replayed = run.trees.of_root(live, root), replays[root]
        check_tree_order(seen, root, child_sessions=child_sessions)
        check_tree_order(replayed, root, child_sessions=child_sessions)
        unseen = check_replay_after_crash(seen, replayed)
        check_answered_kept(seen, replayed)
        check_closed_once(replayed)
        check_open_children_interrupted(seen, replayed, unseen)
        assert _answer_text(after_load, root) == "tok tok tok ", scenario.name
        went_on = replayed + run.trees.of_root(session_notes(after_load), root)
        assert per_conversation(replays_again[root]) == per_conversation(went_on)


async def test_a_daemon_killed_before_a_child_turn_starts_loads_with_the_child_closed(
    tmp_path: Path, workspace: Path
) -> None:
    """Between a child's `conversation` record and its turn's first record the
    daemon writes the index and announces the child: a SIGKILL can land there.
    Each record is one whole line written at once, so the log it leaves is the
    log of a later kill, cut after that record."""
    home = tmp_path / "home"
    async with raw_daemon(offline_env(home)) as daemon:
        await _open(daemon, child_sessions=True)
        answer = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
        root = answer["result"]["sessionId"]
        await daemon.start_prompt(root, 'Delegate "Tell me a long story"', 1)
        await daemon.until(lambda f: (_update(f) or {}).get("sessionUpdate") == "subagent_update")
        daemon.process.send_signal(signal.SIGKILL)
        await daemon.process.wait()
    log = home / "sessions" / root / LOG_NAME
    records = log.read_bytes().splitlines(keepends=True)
    child_started = next(
        n
        for n, line in enumerate(records)
        if json.loads(line)["type"] == "conversation" and json.loads(line).get("parent")
    )
    log.write_bytes(b"".join(records[: child_started + 1]))

    async with raw_daemon(offline_env(home)) as daemon:
        await _open(daemon, child_sessions=True)
        replays = await _load_each(daemon, [root], workspace)
        again = await daemon.request(
            "session/prompt", {"sessionId": root, "prompt": [{"type": "text", "text": AFTER_LOAD}]}
        )
        assert again["result"] == {"stopReason": "end_turn"}
    replayed = replays[root]
    check_tree_order(replayed, root, child_sessions=True)
    check_closed_once(replayed)
