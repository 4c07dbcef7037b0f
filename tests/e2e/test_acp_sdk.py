"""The real daemon driven by the ACP Python SDK over NDJSON, on the built-in
scripted model (the real OpenAI Chat Completions path over loopback)."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import acp
import pytest
from acp import text_block
from acp.schema import AgentMessageChunk

from parleyd.offline.script import PlannedToolCall
from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.chat_streams import text_stream, tool_calls_stream
from tests.support.daemon import offline_env, replay_env
from tests.support.replay_server import ReplayServer
from tests.support.updates import as_replayed


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Widget\n\nA widget that frobs.\nSecond line.\n")
    return root


async def _start(
    connection: acp.core.ClientSideConnection,
    workspace: Path,
    capabilities: acp.schema.ClientCapabilities | None = None,
) -> str:
    """Initialize (as a client with `capabilities`) and open a session in `workspace`."""
    init = await connection.initialize(protocol_version=1, client_capabilities=capabilities)
    assert init.protocol_version == 1
    assert init.agent_capabilities.load_session is True
    assert init.agent_capabilities.session_capabilities.list is not None
    assert init.agent_capabilities.field_meta["parley"]["version"]
    session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
    return session.session_id


async def test_prompt_streams_thinking_text_and_a_real_tool_call(
    workspace: Path, home: Path
) -> None:
    client = RecordingClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(connection, workspace)
        response = await connection.prompt(
            session_id=session_id, prompt=[text_block("Summarize README.md")]
        )
    assert response.stop_reason == "end_turn"
    kinds = client.kinds()
    assert "agent_thought_chunk" in kinds
    assert kinds.count("agent_message_chunk") > 5
    # tool_call (pending) -> update with title and input -> in_progress -> completed
    calls = [u for u in client.updates if u.session_update in ("tool_call", "tool_call_update")]
    assert calls[0].session_update == "tool_call" and calls[0].status == "pending"
    assert calls[1].title == "Read README.md" and calls[1].raw_input == {"path": "README.md"}
    statuses = [u.status for u in calls if u.status]
    assert statuses == ["pending", "in_progress", "completed"]
    shown = calls[-1].content[0].content.text
    assert "A widget that frobs." in shown
    # The answer uses what the tool really read.
    assert 'heading:** "Widget"' in client.text()
    usage = [u for u in client.updates if u.session_update == "usage_update"]
    # One per model response, and the turn's end with its time.
    assert len(usage) == 3
    assert usage[-1].used > 0 and usage[-1].size > 0
    detail = usage[-1].field_meta["parley"]["usage"]
    assert detail["session"]["inputTokens"] >= detail["turn"]["inputTokens"] > 0
    assert detail["turn"]["responses"] == 2 and detail["turn"]["toolUses"] == {"read_file": 1}
    assert detail["turn"]["wallMs"] > 0
    assert usage[1].field_meta["parley"]["usage"]["turn"]["wallMs"] == 0
    # Every update names its conversation.
    conversations = {u.field_meta["parley"]["conversation"]["id"] for u in client.updates}
    assert len(conversations) == 1
    assert client.frames  # and each of them passed the ACP schema check


@pytest.mark.parametrize(("answer", "written"), [("allow_once", True), ("reject_once", False)])
async def test_write_asks_permission_and_obeys_it(
    workspace: Path, home: Path, answer: str, written: bool
) -> None:
    client = RecordingClient(permission_answer=answer)
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(connection, workspace)
        response = await connection.prompt(
            session_id=session_id, prompt=[text_block('Write a note saying "ship it"')]
        )
    assert response.stop_reason == "end_turn"
    assert len(client.permission_requests) == 1
    assert client.permission_requests[0].title.startswith("Write")
    assert (workspace / "NOTES.md").exists() is written
    final = [u for u in client.updates if u.session_update == "tool_call_update" and u.status]
    assert final[-1].status == ("completed" if written else "failed")
    if written:
        assert final[-1].content[0].type == "diff"
    else:
        assert "declined" in client.text()


async def test_cancel_mid_stream_answers_cancelled_and_keeps_what_was_said(
    workspace: Path, home: Path
) -> None:
    client = RecordingClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(connection, workspace)
        prompt = asyncio.ensure_future(
            connection.prompt(session_id=session_id, prompt=[text_block("Tell me a long story")])
        )
        # Cancelled once the answer is under way (after the title and the thinking).
        await asyncio.wait_for(client.wait_for(lambda u: isinstance(u, AgentMessageChunk)), 10)
        await connection.cancel(session_id=session_id)
        response = await asyncio.wait_for(prompt, 5)
        streamed = client.text()
        # The session is usable again right away.
        again = await connection.prompt(session_id=session_id, prompt=[text_block("Hello")])
    assert response.stop_reason == "cancelled"
    assert streamed and "The End" not in streamed
    assert again.stop_reason == "end_turn"


async def test_list_and_load_after_a_daemon_restart_replay_everything(
    workspace: Path, home: Path
) -> None:
    live = RecordingClient()
    async with acp_daemon(offline_env(home), live) as (connection, _):
        session_id = await _start(connection, workspace)
        await connection.prompt(session_id=session_id, prompt=[text_block("Summarize README.md")])

    replayed = RecordingClient()
    async with acp_daemon(offline_env(home), replayed) as (connection, _):
        await connection.initialize(protocol_version=1)
        listed = await connection.list_sessions(cwd=str(workspace))
        assert [s.session_id for s in listed.sessions] == [session_id]
        assert listed.sessions[0].title == "Summarize README.md"
        await connection.load_session(session_id=session_id, cwd=str(workspace), mcp_servers=[])
        # The loaded session takes new prompts with its history intact.
        more = await connection.prompt(session_id=session_id, prompt=[text_block("Hello")])
    assert more.stop_reason == "end_turn"

    expected = as_replayed([u.model_dump(by_alias=True) for u in live.updates])
    replay = replayed.updates[: len(expected) + 1]
    assert replay[0].session_update == "user_message_chunk"
    assert replay[0].content.text == "Summarize README.md"
    # Part for part and tool call for tool call, as it streamed.
    assert [u.model_dump(by_alias=True) for u in replay[1:]] == expected


async def test_load_of_an_unknown_session_is_a_clear_error(workspace: Path, home: Path) -> None:
    client = RecordingClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        await connection.initialize(protocol_version=1)
        with pytest.raises(acp.RequestError) as error:
            await connection.load_session(
                session_id="sess_000000000000000000000000", cwd=str(workspace), mcp_servers=[]
            )
        assert "no session" in str(error.value)
        # The daemon is still there.
        assert (await connection.list_sessions()).sessions == []


async def test_cancel_stops_a_running_shell_command(workspace: Path, home: Path) -> None:
    client = RecordingClient(permission_answer="allow_once")
    marker = workspace / "finished"
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(connection, workspace)
        prompt = asyncio.ensure_future(
            connection.prompt(
                session_id=session_id,
                prompt=[text_block(f"Run `sleep 30 && touch {marker}`")],
            )
        )
        running = client.wait_for(lambda u: getattr(u, "status", None) == "in_progress")
        await asyncio.wait_for(running, 10)
        await connection.cancel(session_id=session_id)
        # Far sooner than the command's 30 s: the cancel killed it.
        response = await asyncio.wait_for(prompt, 10)
    assert response.stop_reason == "cancelled"
    last = [u for u in client.updates if u.session_update == "tool_call_update"][-1]
    assert last.status == "failed"
    assert "Cancelled" in last.content[0].content.text
    assert not marker.exists()


async def test_allow_always_is_asked_once_per_tool(workspace: Path, home: Path) -> None:
    client = RecordingClient(permission_answer="allow_always")
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(connection, workspace)
        for note in ("first", "second"):
            response = await connection.prompt(
                session_id=session_id, prompt=[text_block(f'Write a note saying "{note}"')]
            )
            assert response.stop_reason == "end_turn"
    assert len(client.permission_requests) == 1
    assert "second" in (workspace / "NOTES.md").read_text()


TREE = 'Delegate "Summarize README.md" and "delegate `list the files`"'


async def test_a_tree_of_sub_agents_reaches_the_sdk_and_replays(
    workspace: Path, home: Path
) -> None:
    """Two sub-agents in parallel and a grandchild, to a client without child
    sessions: the SDK takes every update, each names its conversation, and a
    fresh daemon's replay is the live stream, per conversation."""
    live = RecordingClient()
    async with acp_daemon(offline_env(home), live) as (connection, _):
        session_id = await _start(connection, workspace)
        response = await connection.prompt(session_id=session_id, prompt=[text_block(TREE)])
    assert response.stop_reason == "end_turn"

    def per_conversation(updates: list[object]) -> dict[str, list[dict[str, object]]]:
        grouped: dict[str, list[dict[str, object]]] = {}
        for update in updates:
            dumped = update.model_dump(by_alias=True)  # type: ignore[attr-defined]
            conversation = dumped["_meta"]["parley"]["conversation"]
            if conversation["depth"] == 0 and dumped["sessionUpdate"] == "user_message_chunk":
                continue  # the client's own prompt, only replayed
            grouped.setdefault(conversation["id"], []).append(dumped)
        return {key: as_replayed(value) for key, value in grouped.items()}

    streamed = per_conversation(live.updates)
    assert len(streamed) == 4
    states = [
        u.field_meta["parley"]["subagent"]["state"]
        for u in live.updates
        if "subagent" in u.field_meta["parley"]
    ]
    assert states.count("running") == 3 and states.count("idle") == 3
    usage = [u for u in live.updates if u.session_update == "usage_update"][-1]
    assert usage.field_meta["parley"]["usage"]["total"]["responses"] == 8

    replayed = RecordingClient()
    async with acp_daemon(offline_env(home), replayed) as (connection, _):
        await connection.initialize(protocol_version=1)
        await connection.load_session(session_id=session_id, cwd=str(workspace), mcp_servers=[])
    assert per_conversation(replayed.updates) == streamed


async def test_an_edit_lands_as_a_diff_and_an_ambiguous_one_says_where_it_matched(
    workspace: Path, home: Path
) -> None:
    (workspace / "notes.txt").write_text("todo: one\ntodo: two\ndone: three\n")
    client = RecordingClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(connection, workspace)
        await connection.prompt(
            session_id=session_id,
            prompt=[text_block('Replace "done: three" with "done: 3" in notes.txt')],
        )
        await connection.prompt(
            session_id=session_id,
            prompt=[text_block('Replace "todo" with "TODO" in notes.txt')],
        )
    asked = client.permission_requests[0]
    assert asked.title == "Edit notes.txt"
    (diff,) = asked.content
    assert (diff.type, diff.old_text, diff.new_text) == (
        "diff",
        "todo: one\ntodo: two\ndone: three\n",
        "todo: one\ntodo: two\ndone: 3\n",
    )
    assert (workspace / "notes.txt").read_text() == "todo: one\ntodo: two\ndone: 3\n"
    ended = [
        u
        for u in client.updates
        if u.session_update == "tool_call_update" and u.status in ("completed", "failed")
    ]
    assert [u.status for u in ended] == ["completed", "failed"]
    assert (
        ended[-1]
        .raw_output["output"]
        .startswith(  # what the model read
            "the edit: old_text occurs 2 times in notes.txt, at lines 1, 2;"
        )
    )
    assert "I could not complete that" in client.text()


async def test_a_plan_is_ticked_off_across_tool_calls_and_replayed_after_a_load(
    workspace: Path, home: Path
) -> None:
    live = RecordingClient()
    async with acp_daemon(offline_env(home), live) as (connection, _):
        session_id = await _start(connection, workspace)
        await connection.prompt(
            session_id=session_id, prompt=[text_block('Make a plan "Read it", "Fix it"')]
        )
    plans = [
        [(entry.content, entry.status, entry.priority) for entry in update.entries]
        for update in live.updates
        if update.session_update == "plan"
    ]
    assert plans == [
        [("Read it", "in_progress", "high"), ("Fix it", "pending", "medium")],
        [("Read it", "completed", "high"), ("Fix it", "in_progress", "medium")],
        [("Read it", "completed", "high"), ("Fix it", "completed", "medium")],
    ]
    # Each plan comes right after the end of the call that set it.
    kinds = [(u.session_update, getattr(u, "status", None)) for u in live.updates]
    ends = [i for i, kind in enumerate(kinds) if kind == ("tool_call_update", "completed")]
    assert [kinds[i + 1][0] for i in ends] == ["plan"] * 3
    assert "All 2 steps of the plan are done." in live.text()

    replayed = RecordingClient()
    async with acp_daemon(offline_env(home), replayed) as (connection, _):
        await connection.initialize(protocol_version=1)
        await connection.load_session(session_id=session_id, cwd=str(workspace), mcp_servers=[])
    expected = as_replayed([u.model_dump(by_alias=True) for u in live.updates])
    assert [u.model_dump(by_alias=True) for u in replayed.updates[1:]] == expected


@dataclass
class EditorClient(RecordingClient):
    """A client with `fs` capabilities and buffers of its own: what it holds for
    a path is what the agent must read, and its writes land here, not on disk."""

    buffers: dict[str, str] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None,
        **_: Any,
    ) -> acp.schema.ReadTextFileResponse:  # fmt: skip
        self.asked.append(("read", path))
        if path not in self.buffers:
            raise acp.RequestError.resource_not_found(path)
        return acp.schema.ReadTextFileResponse(content=self.buffers[path])

    async def write_text_file(
        self, session_id: str, path: str, content: str, **_: Any
    ) -> acp.schema.WriteTextFileResponse:
        self.asked.append(("write", path))
        self.buffers[path] = content
        return acp.schema.WriteTextFileResponse()


async def test_with_fs_capabilities_files_are_read_and_edited_in_the_editors_buffers(
    workspace: Path, home: Path
) -> None:
    notes = workspace / "notes.txt"
    notes.write_text("saved: one\n")
    client = EditorClient(buffers={str(notes): "unsaved: two\n"})
    async with acp_daemon(offline_env(home), client) as (connection, _):
        fs = acp.schema.FileSystemCapabilities(read_text_file=True, write_text_file=True)
        session_id = await _start(connection, workspace, acp.schema.ClientCapabilities(fs=fs))
        for text in (
            "Summarize notes.txt",
            'Replace "two" with "2" in notes.txt',
            "Summarize README.md",
        ):
            await connection.prompt(session_id=session_id, prompt=[text_block(text)])
    assert "unsaved: two" in client.text()  # the buffer, not the disk
    (diff,) = client.permission_requests[0].content
    assert (diff.old_text, diff.new_text) == ("unsaved: two\n", "unsaved: 2\n")
    assert client.buffers[str(notes)] == "unsaved: 2\n"
    assert notes.read_text() == "saved: one\n"  # the editor saves when its user does
    # A file the editor has no buffer for is read from the disk.
    assert ("read", str(workspace / "README.md")) in client.asked
    first_line = (workspace / "README.md").read_text().splitlines()[0].lstrip("# ")
    assert f'**First heading:** "{first_line}"' in client.text()


TERMINALS = acp.schema.ClientCapabilities(terminal=True)


@dataclass
class TerminalClient(RecordingClient):
    """A client with terminals: it runs each command itself, as an editor's
    terminal would, and keeps what the agent asked of each."""

    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    outputs: dict[str, bytes] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def create_terminal(
        self, session_id: str, command: str, args: list[str] | None = None,
        env: Any = None, cwd: str | None = None, output_byte_limit: int | None = None,
        **_: Any,
    ) -> acp.schema.CreateTerminalResponse:  # fmt: skip
        terminal_id = f"term_{len(self.processes) + 1}"
        self.asked.append(("create", f"{command} {' '.join(args or [])} in {cwd}"))
        self.processes[terminal_id] = await asyncio.create_subprocess_exec(
            command, *(args or []), cwd=cwd, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return acp.schema.CreateTerminalResponse(terminal_id=terminal_id)

    async def wait_for_terminal_exit(
        self, session_id: str, terminal_id: str, **_: Any
    ) -> acp.schema.WaitForTerminalExitResponse:
        self.asked.append(("wait", terminal_id))
        process = self.processes[terminal_id]
        assert process.stdout is not None
        self.outputs[terminal_id] = await process.stdout.read()
        code = await process.wait()
        if code < 0:
            return acp.schema.WaitForTerminalExitResponse(signal="SIGTERM")
        return acp.schema.WaitForTerminalExitResponse(exit_code=code)

    async def terminal_output(
        self, session_id: str, terminal_id: str, **_: Any
    ) -> acp.schema.TerminalOutputResponse:
        self.asked.append(("output", terminal_id))
        text = self.outputs.get(terminal_id, b"").decode()
        return acp.schema.TerminalOutputResponse(output=text, truncated=False)

    async def kill_terminal(self, session_id: str, terminal_id: str, **_: Any) -> None:
        self.asked.append(("kill", terminal_id))
        os.killpg(self.processes[terminal_id].pid, signal.SIGTERM)  # as a terminal closes

    async def release_terminal(self, session_id: str, terminal_id: str, **_: Any) -> None:
        self.asked.append(("release", terminal_id))


async def test_with_terminal_capability_commands_run_in_the_editors_terminal(
    workspace: Path, home: Path
) -> None:
    client = TerminalClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(
            connection, workspace, acp.schema.ClientCapabilities(terminal=True)
        )
        await connection.prompt(
            session_id=session_id, prompt=[text_block("Run `echo from the editor; exit 3`")]
        )
    assert client.asked == [
        ("create", f"/bin/sh -c echo from the editor; exit 3 in {workspace}"),
        ("wait", "term_1"),
        ("output", "term_1"),
        ("release", "term_1"),
    ]
    shown = [
        update.content
        for update in client.updates
        if update.session_update == "tool_call_update" and update.content
    ]
    assert shown[0][0].type == "terminal" and shown[0][0].terminal_id == "term_1"
    final = [u for u in client.updates if getattr(u, "status", None) == "failed"][-1]
    assert final.raw_output["output"] == "from the editor\n[exit code 3]"


async def test_a_command_cancelled_in_the_editors_terminal_is_killed_and_released(
    workspace: Path, home: Path
) -> None:
    client = TerminalClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(
            connection, workspace, acp.schema.ClientCapabilities(terminal=True)
        )
        turn = asyncio.create_task(
            connection.prompt(session_id=session_id, prompt=[text_block("Run `sleep 30`")])
        )
        await client.wait_for(
            lambda u: (
                u.session_update == "tool_call_update"
                and bool(u.content)
                and u.content[0].type == "terminal"
            )
        )
        await connection.cancel(session_id=session_id)
        answer = await turn
    assert answer.stop_reason == "cancelled"
    assert [what for what, _ in client.asked] == ["create", "wait", "kill", "release"]
    # The editor's process ended (and is reaped here, in the loop that started it).
    await asyncio.wait_for(client.processes["term_1"].communicate(), 10)
    assert client.processes["term_1"].returncode != 0


async def test_a_session_works_in_its_additional_directories_and_nowhere_else(
    workspace: Path, home: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.md").write_text("shared notes\n")
    (tmp_path / "private.txt").write_text("keep out\n")
    reads = (
        PlannedToolCall("call_in", "read_file", {"path": str(shared / "notes.md")}),
        PlannedToolCall("call_out", "read_file", {"path": str(tmp_path / "private.txt")}),
    )
    client = RecordingClient()
    async with ReplayServer() as provider:
        provider.enqueue(200, "text/event-stream", tool_calls_stream(*reads))
        provider.enqueue(200, "text/event-stream", text_stream("Read."))
        async with acp_daemon(replay_env(home, provider.url), client) as (connection, _):
            init = await connection.initialize(protocol_version=1)
            assert init.agent_capabilities.session_capabilities.additional_directories is not None
            session = await connection.new_session(
                cwd=str(workspace), mcp_servers=[], additional_directories=[str(shared)]
            )
            await connection.prompt(session_id=session.session_id, prompt=[text_block("go")])
            with pytest.raises(acp.RequestError, match=r"additionalDirectories\[0\] .* not an"):
                await connection.new_session(
                    cwd=str(workspace),
                    mcp_servers=[],
                    additional_directories=[str(tmp_path / "no")],
                )
        system = provider.requests[0].json["messages"][0]["content"]
    assert f"You may also work in {shared}" in system
    ended = {
        u.tool_call_id: u.raw_output["output"]
        for u in client.updates
        if u.session_update == "tool_call_update" and u.status in ("completed", "failed")
    }
    assert ended["call_in"] == "shared notes\n"
    assert ended["call_out"] == (
        f"path '{tmp_path / 'private.txt'}' is outside the workspace {workspace}, {shared}"
    )


async def test_slash_commands_are_advertised_after_the_answer_and_run_without_the_model(
    workspace: Path, home: Path
) -> None:
    client = RecordingClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(connection, workspace)
        answer = await connection.prompt(
            session_id=session_id, prompt=[text_block("/mode read_only")]
        )
        assert answer.stop_reason == "end_turn"
        await connection.prompt(session_id=session_id, prompt=[text_block("/budget responses=1")])
        with pytest.raises(acp.RequestError, match="/budget takes cost=N responses=N seconds=N"):
            await connection.prompt(session_id=session_id, prompt=[text_block("/budget lots")])
        with pytest.raises(acp.RequestError, match="unknown mode"):
            await connection.prompt(session_id=session_id, prompt=[text_block("/mode fast")])
        # One response is the budget: the model answers once, then the next prompt stops.
        await connection.prompt(session_id=session_id, prompt=[text_block("/unknown hi")])
        stopped = await connection.prompt(session_id=session_id, prompt=[text_block("Hello")])
        with pytest.raises(acp.RequestError, match="prompt is empty"):
            await connection.prompt(session_id=session_id, prompt=[])
    (advertised,) = client.commands
    opened = next(n for n, f in enumerate(client.frames) if "sessionId" in (f.get("result") or {}))
    told = next(
        n
        for n, f in enumerate(client.frames)
        if f.get("params", {}).get("update", {}).get("sessionUpdate") == "available_commands_update"
    )
    assert opened < told  # the client knows the session when it hears of its commands
    assert [(c.name, c.input.root.hint) for c in advertised.available_commands] == [
        ("compact", "what the summary should keep, if anything"),
        ("mode", "ask, accept_edits, read_only or full_auto"),
        ("budget", "cost=2 responses=50 seconds=600, or none"),
    ]
    modes = [u.current_mode_id for u in client.updates if u.session_update == "current_mode_update"]
    assert modes == ["read_only"]
    assert stopped.stop_reason == "max_turn_requests"
    # The commands never reached the model; the unknown one did, as words.
    assert "/mode" not in client.text() and "budget of 1 model response" in client.text()
    # Each told the user what it set, which a client that shows no mode still shows.
    told = [
        u.content.text
        for u in client.updates
        if (u.field_meta or {}).get("parley", {}).get("command")
    ]
    assert told == ["Permission mode: Read only.", "Budget: at most 1 model response."]
