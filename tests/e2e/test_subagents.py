"""Sub-conversations through the real daemon on the offline model: children in
parallel and a grandchild, each announced before its traffic, every update
attributed, usage rolled up, per-child cancel, a child's permission question,
a crash while children run, and a replay equal to the live stream, for a
client that takes child sessions (checked against ACP's unstable schema) and
for one that does not (checked against the stable schema)."""

from __future__ import annotations

import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.support.acp_conformance import FrameChecker
from tests.support.daemon import offline_env
from tests.support.raw_daemon import RawDaemon, raw_daemon
from tests.support.transcripts import session_notes
from tests.support.updates import as_replayed

# Two children in parallel; the second delegates once more.
TREE = 'Delegate "Read README.md and summarize it" and "delegate `list the files`"'


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Trees\n\nAbout sub-agents.\n")
    return root


async def _open(daemon: RawDaemon, *, subagents: bool) -> None:
    # A client that takes child sessions is sent what only the unstable schema has.
    daemon.checker = FrameChecker(unstable=subagents)
    capabilities = {"subagents": {}} if subagents else {}
    answer = await daemon.request(
        "initialize", {"protocolVersion": 1, "clientCapabilities": capabilities}
    )
    assert "result" in answer


async def _new(daemon: RawDaemon, workspace: Path, *, subagents: bool) -> str:
    await _open(daemon, subagents=subagents)
    answer = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
    session_id: str = answer["result"]["sessionId"]
    return session_id


def _notes(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return session_notes(frames)


def _conversation(note: dict[str, Any]) -> dict[str, Any]:
    conversation: dict[str, Any] = note["update"]["_meta"]["parley"]["conversation"]
    return conversation


def _announced(notes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Child session id -> the note that announced it (the first subagent_update)."""
    announced: dict[str, dict[str, Any]] = {}
    for note in notes:
        update = note["update"]
        if update["sessionUpdate"] == "subagent_update":
            announced.setdefault(update["sessionId"], note)
    return announced


def _per_session(notes: list[dict[str, Any]], root: str) -> dict[str, list[dict[str, Any]]]:
    """Each session's updates, merged; without the root's own prompt, which
    the client sent itself and is only replayed, and without the states of
    answered permission questions, which are live only."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for note in notes:
        update = note["update"]
        if note["sessionId"] == root and update["sessionUpdate"] == "user_message_chunk":
            continue
        state = update.get("state") or {}
        if state.get("state") == "requires_action" or (
            update["sessionUpdate"] == "subagent_update"
            and "title" not in update
            and state.get("state") == "running"
        ):
            continue
        grouped[note["sessionId"]].append(update)
    return {session: as_replayed(updates) for session, updates in grouped.items()}


def _check_tree_order(notes: list[dict[str, Any]], root: str) -> dict[str, dict[str, Any]]:
    """Every child session is announced on its parent before any of its own
    traffic, and every update names the conversation of its session."""
    announced = _announced(notes)
    seen: set[str] = {root}
    for note in notes:
        session, update = note["sessionId"], note["update"]
        assert session in seen, f"traffic of {session} before its announcement"
        if update["sessionUpdate"] == "subagent_update":
            seen.add(update["sessionId"])
            continue
        conversation = _conversation(note)
        if session != root:
            assert conversation["id"] == session
            parent_note = announced[session]
            parent_conversation = _conversation(parent_note)["id"]
            assert conversation["parent"] == parent_conversation
    return announced


async def _tree(
    env: dict[str, str], workspace: Path, *, subagents: bool
) -> tuple[str, list[dict[str, Any]]]:
    """A session that ran TREE to its end: its id and the updates it streamed."""
    async with raw_daemon(env) as daemon:
        root = await _new(daemon, workspace, subagents=subagents)
        answer = await daemon.request(
            "session/prompt", {"sessionId": root, "prompt": [{"type": "text", "text": TREE}]}
        )
        assert answer["result"] == {"stopReason": "end_turn"}
        return root, _notes(daemon.frames)


async def _replayed(
    home: Path, workspace: Path, root: str, *, subagents: bool
) -> list[dict[str, Any]]:
    """The updates a fresh daemon's `session/load` of `root` replays."""
    async with raw_daemon(offline_env(home)) as daemon:
        await _open(daemon, subagents=subagents)
        loaded = await daemon.request(
            "session/load", {"sessionId": root, "cwd": str(workspace), "mcpServers": []}
        )
        assert loaded["result"]["modes"]["currentModeId"] == "ask"
        return _notes(daemon.frames)


async def test_children_in_parallel_and_a_grandchild_as_child_sessions(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    root, live = await _tree(offline_env(home), workspace, subagents=True)

    announced = _check_tree_order(live, root)
    assert len(announced) == 3
    on_root = [child for child, note in announced.items() if note["sessionId"] == root]
    assert len(on_root) == 2
    (grandchild,) = [child for child, note in announced.items() if note["sessionId"] != root]
    titles = {announced[child]["update"]["title"] for child in on_root}
    assert titles == {"Read README.md and summarize it", "delegate `list the files`"}
    assert announced[grandchild]["update"]["capabilities"] == {"cancel": {}}
    # Both children were running before either finished: they ran side by side.
    states = [
        (n["update"]["sessionId"], n["update"]["state"]["state"])
        for n in live
        if n["update"]["sessionUpdate"] == "subagent_update" and n["sessionId"] == root
    ]
    assert states[:2] == [(on_root[0], "running"), (on_root[1], "running")]
    ends = {
        n["update"]["sessionId"]: n["update"]["state"]
        for n in live
        if n["update"]["sessionUpdate"] == "subagent_update"
        and n["update"]["state"]["state"] == "idle"
    }
    assert ends == {child: {"state": "idle", "stopReason": "end_turn"} for child in announced}

    # The grandchild's listing reached the root through its parent.
    root_text = "".join(
        n["update"]["content"]["text"]
        for n in live
        if n["sessionId"] == root and n["update"]["sessionUpdate"] == "agent_message_chunk"
    )
    assert "README.md" in root_text and "`list_directory`" in root_text

    # Usage: the root's last figures hold every conversation's.
    usage = [n["update"] for n in live if n["update"]["sessionUpdate"] == "usage_update"]
    last_root = [u for u in usage if _conversation({"update": u})["depth"] == 0][-1]
    figures = last_root["_meta"]["parley"]["usage"]
    assert figures["total"]["responses"] == 8  # each of the four answered in two responses
    assert figures["own"]["responses"] == 2
    assert figures["total"]["toolUses"] == {"subagent": 3, "read_file": 1, "list_directory": 1}
    assert figures["own"]["toolUses"] == {"subagent": 2}
    assert figures["session"] == figures["total"]
    assert figures["total"]["wallMs"] > figures["own"]["wallMs"] > 0

    replayed = await _replayed(home, workspace, root, subagents=True)
    assert _check_tree_order(replayed, root).keys() == announced.keys()
    assert _per_session(replayed, root) == _per_session(live, root)
    replayed_usage = [
        n["update"] for n in replayed if n["update"]["sessionUpdate"] == "usage_update"
    ]
    assert replayed_usage[-1] == usage[-1]


async def test_a_client_without_child_sessions_gets_the_tree_under_meta(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    root, live = await _tree(offline_env(home), workspace, subagents=False)

    # Everything under the session's own id, nothing unstable, each update
    # naming its conversation; children show on their parent's tool call.
    assert {note["sessionId"] for note in live} == {root}
    assert "subagent_update" not in {note["update"]["sessionUpdate"] for note in live}
    subagent_info = [
        note["update"]["_meta"]["parley"]["subagent"]
        for note in live
        if "subagent" in note["update"]["_meta"]["parley"]
    ]
    started = {
        info["conversation"]["id"]: info for info in subagent_info if info["state"] == "running"
    }
    assert len(started) == 3
    depths = sorted(info["conversation"]["depth"] for info in started.values())
    assert depths == [1, 1, 2]
    conversations = {_conversation(note)["id"] for note in live}
    assert set(started) < conversations and len(conversations) == 4
    for note in live:
        conversation = _conversation(note)
        if conversation["id"] in started:
            assert conversation == started[conversation["id"]]["conversation"]

    replayed = await _replayed(home, workspace, root, subagents=False)

    def per_conversation(notes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for note in notes:
            update = note["update"]
            conversation = _conversation(note)
            if conversation["depth"] == 0 and update["sessionUpdate"] == "user_message_chunk":
                continue
            grouped[conversation["id"]].append(update)
        return {key: as_replayed(value) for key, value in grouped.items()}

    assert per_conversation(replayed) == per_conversation(live)


async def _child_streaming(daemon: RawDaemon, marker: str) -> tuple[str, str]:
    """Wait until the story child has streamed `marker`: its session and parent call."""
    announcements: dict[str, dict[str, Any]] = {}
    told = ""
    while True:
        frame = await daemon.receive()
        if frame.get("method") != "session/update":
            continue
        session, update = frame["params"]["sessionId"], frame["params"]["update"]
        if update["sessionUpdate"] == "subagent_update" and "title" in update:
            announcements[update["sessionId"]] = update
        is_story = session in announcements and "story" in announcements[session]["title"]
        if is_story and update["sessionUpdate"] == "agent_message_chunk":
            told += update["content"]["text"]
            if marker in told:
                return session, update["_meta"]["parley"]["conversation"]["parentToolCall"]


@pytest.mark.parametrize("how", ["session/cancel", "_parley/toolCall/cancel"])
async def test_cancelling_one_child_gives_its_call_what_it_had_and_the_turn_goes_on(
    tmp_path: Path, workspace: Path, how: str
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        root = await _new(daemon, workspace, subagents=True)
        await daemon.start_prompt(root, 'Delegate "Tell me a long story" and "Read README.md"', 7)
        child, parent_call = await _child_streaming(daemon, "Lighthouse")
        if how == "session/cancel":
            await daemon.send(
                {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": child}}
            )
        else:
            answer = await daemon.request(how, {"sessionId": root, "toolCallId": parent_call})
            assert answer["result"] == {}
        answer = await daemon.until(lambda f: f.get("id") == 7)
        assert answer["result"] == {"stopReason": "end_turn"}
        notes = _notes(daemon.frames)

    ended = [
        n["update"]["state"]
        for n in notes
        if n["update"]["sessionUpdate"] == "subagent_update"
        and n["update"]["sessionId"] == child
        and n["update"]["state"]["state"] == "idle"
    ]
    assert ended == [{"state": "idle", "stopReason": "cancelled"}]
    finished = [
        n["update"]
        for n in notes
        if n["update"].get("toolCallId") == parent_call and n["update"].get("status") == "failed"
    ]
    assert len(finished) == 1
    result = finished[0]["content"][0]["content"]["text"]
    assert result.startswith("The sub-agent was cancelled by the user before it finished.")
    assert "What it had so far" in result and "Lighthouse" in result
    # The other child finished its read, and the root answered from both.
    root_text = "".join(
        n["update"]["content"]["text"]
        for n in notes
        if n["sessionId"] == root and n["update"]["sessionUpdate"] == "agent_message_chunk"
    )
    assert "Trees" in root_text


async def test_a_child_asks_permission_under_its_own_session(
    tmp_path: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        root = await _new(daemon, workspace, subagents=True)
        await daemon.start_prompt(root, 'Delegate "write a note saying hello"', 8)
        ask = await daemon.until(lambda f: f.get("method") == "session/request_permission")
        child = ask["params"]["sessionId"]
        assert child != root
        assert ask["params"]["_meta"]["parley"]["conversation"]["id"] == child
        states = [
            n["update"]["state"]["state"]
            for n in _notes(daemon.frames)
            if n["update"]["sessionUpdate"] == "subagent_update"
        ]
        assert states[-1] == "requires_action"
        outcome = {"outcome": "selected", "optionId": "allow_once"}
        await daemon.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"outcome": outcome}})
        answer = await daemon.until(lambda f: f.get("id") == 8)
        assert answer["result"] == {"stopReason": "end_turn"}
        states = [
            n["update"]["state"]["state"]
            for n in _notes(daemon.frames)
            if n["update"]["sessionUpdate"] == "subagent_update"
        ]
        assert states[-3:] == ["requires_action", "running", "idle"]
    assert "hello" in (workspace / "NOTES.md").read_text()


async def test_a_daemon_killed_while_children_run_loads_with_every_child_closed(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with raw_daemon(offline_env(home)) as daemon:
        root = await _new(daemon, workspace, subagents=True)
        await daemon.start_prompt(root, 'Delegate "Tell me a long story" and "Read README.md"', 9)
        child, parent_call = await _child_streaming(daemon, "I'm")
        daemon.process.send_signal(signal.SIGKILL)
        await daemon.process.wait()
        live = _notes(daemon.frames)

    async with raw_daemon(offline_env(home)) as daemon:
        await _open(daemon, subagents=True)
        loaded = await daemon.request(
            "session/load", {"sessionId": root, "cwd": str(workspace), "mcpServers": []}
        )
        assert loaded["result"]["modes"]["currentModeId"] == "ask"
        replayed = _notes(daemon.frames)
        # The session goes on from its closed history.
        again = await daemon.request(
            "session/prompt", {"sessionId": root, "prompt": [{"type": "text", "text": "Hi"}]}
        )
        assert again["result"] == {"stopReason": "end_turn"}

    announced = _check_tree_order(replayed, root)
    assert child in announced and set(_announced(live)) <= set(announced)
    idle = {
        n["update"]["sessionId"]: n["update"]["state"].get("stopReason")
        for n in replayed
        if n["update"]["sessionUpdate"] == "subagent_update"
        and n["update"]["state"]["state"] == "idle"
    }
    assert idle[child] == "_interrupted"

    # The story child's replay is what it streamed live up to its last
    # recorded part (a response still streaming when the daemon died is not).
    def story(notes: list[dict[str, Any]]) -> str:
        return "".join(
            n["update"]["content"]["text"]
            for n in notes
            if n["sessionId"] == child and n["update"]["sessionUpdate"] == "agent_message_chunk"
        )

    assert story(live).startswith(story(replayed))
    parent_results = [
        n["update"]
        for n in replayed
        if n["update"].get("toolCallId") == parent_call and n["update"].get("status") == "failed"
    ]
    assert len(parent_results) == 1


async def test_children_nest_no_deeper_than_configured(tmp_path: Path, workspace: Path) -> None:
    env = {**offline_env(tmp_path / "home"), "PARLEY_MAX_SUBAGENT_DEPTH": "1"}
    _, notes = await _tree(env, workspace, subagents=True)
    # Two children, no grandchild: at depth 1 there is no subagent tool.
    assert len(_announced(notes)) == 2
    text = "".join(
        n["update"]["content"]["text"]
        for n in notes
        if n["update"]["sessionUpdate"] == "agent_message_chunk"
    )
    assert "not among the tools" in text


def _texts(notes: list[dict[str, Any]], session: str | None = None) -> str:
    return "".join(
        n["update"]["content"]["text"]
        for n in notes
        if n["update"]["sessionUpdate"] == "agent_message_chunk"
        and (session is None or n["sessionId"] == session)
    )


async def _set_budget(daemon: RawDaemon, root: str, **budget: Any) -> dict[str, Any]:
    return await daemon.request("_parley/session/setBudget", {"sessionId": root, "budget": budget})


async def test_a_child_that_spends_its_budget_stops_and_its_parent_reads_why(
    tmp_path: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        root = await _new(daemon, workspace, subagents=True)
        answer = await daemon.request(
            "session/prompt",
            {
                "sessionId": root,
                "prompt": [
                    {
                        "type": "text",
                        "text": 'Delegate "Read README.md" with a budget of 1 response',
                    }
                ],
            },
        )
        assert answer["result"] == {"stopReason": "end_turn"}
        notes = _notes(daemon.frames)
    (child,) = _announced(notes)
    # It read the file in its one response, then stopped before the next.
    spent = [n for n in notes if n["update"]["_meta"]["parley"].get("budget")]
    assert [n["sessionId"] for n in spent] == [child]
    assert spent[0]["update"]["_meta"]["parley"]["budget"] == {
        "conversation": child,
        "limit": "responses",
        "allowed": 1,
        "used": 1,
    }
    idle = [
        n["update"]["state"]
        for n in notes
        if n["update"]["sessionUpdate"] == "subagent_update" and n["update"]["sessionId"] == child
    ][-1]
    assert idle == {"state": "idle", "stopReason": "max_turn_requests"}
    result = next(
        n["update"]["content"][0]["content"]["text"]
        for n in notes
        if n["sessionId"] == root and n["update"].get("status") == "failed"
    )
    assert result.startswith(
        "The sub-agent stopped: the budget of 1 model response for this sub-agent is spent"
    )


async def test_the_session_budget_stops_every_conversation_and_raising_it_goes_on(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with raw_daemon(offline_env(home)) as daemon:
        # Notices for this client: the budget stop comes as one.
        daemon.checker = FrameChecker()
        await daemon.request(
            "initialize",
            {"protocolVersion": 1, "clientCapabilities": {"session": {"notices": {}}}},
        )
        created = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
        root = created["result"]["sessionId"]
        capabilities = daemon.frames[0]["result"]["agentCapabilities"]["_meta"]["parley"]
        assert "_parley/session/setBudget" in capabilities["methods"]
        assert (await _set_budget(daemon, root, responses=3))["result"] == {
            "budget": {"cost": None, "responses": 3, "seconds": None}
        }
        # The root delegates (1), each child answers once (2, 3): then the
        # session's budget is spent, for the children and the root alike. A
        # response already asked for when the budget ran out still lands.
        answer = await _prompt_answer(daemon, root, TREE)
        assert answer == {"stopReason": "max_turn_requests"}
        notes = _notes(daemon.frames)
        stops = [n for n in notes if n["update"]["sessionUpdate"] == "notice"]
        stopped = {_conversation(n)["depth"] for n in stops}
        assert 0 in stopped and len(stops) >= 2
        assert all("for the session is spent" in n["update"]["description"] for n in stops)
        usage = [n["update"] for n in notes if n["update"]["sessionUpdate"] == "usage_update"]
        assert 3 <= usage[-1]["_meta"]["parley"]["usage"]["total"]["responses"] < 6

        raised = await _set_budget(daemon, root, responses=100)
        assert raised["result"]["budget"]["responses"] == 100
        assert await _prompt_answer(daemon, root, "Hi") == {"stopReason": "end_turn"}
        refused = await _set_budget(daemon, root, responses=0)
        assert refused["error"]["code"] == -32602
        unknown = await daemon.request(
            "_parley/session/setBudget",
            {"sessionId": root, "conversationId": "conv_nope", "budget": {"responses": 5}},
        )
        assert unknown["error"]["code"] == -32002 and "conv_nope" in unknown["error"]["message"]
        # Exactly what the session has spent: its next model call is one too many.
        usage = [
            n["update"]
            for n in _notes(daemon.frames)
            if n["update"]["sessionUpdate"] == "usage_update"
        ]
        spent = usage[-1]["_meta"]["parley"]["usage"]["total"]["responses"]
        await _set_budget(daemon, root, responses=spent)

    # The budget is the session's: a fresh daemon keeps it, and its stops replay.
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.request("initialize", {"protocolVersion": 1})
        await daemon.request(
            "session/load", {"sessionId": root, "cwd": str(workspace), "mcpServers": []}
        )
        replayed = _notes(daemon.frames)
        assert _texts(replayed).count("for the session is spent") == len(stops)
        assert await _prompt_answer(daemon, root, "Hi") == {"stopReason": "max_turn_requests"}


async def _prompt_answer(daemon: RawDaemon, session: str, text: str) -> dict[str, Any]:
    answer = await daemon.request(
        "session/prompt", {"sessionId": session, "prompt": [{"type": "text", "text": text}]}
    )
    result: dict[str, Any] = answer["result"]
    return result
