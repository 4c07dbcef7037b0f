"""Bad input gets a clear JSON-RPC error, the daemon keeps running, and nothing
on disk is lost."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import PARLEYD, offline_env, replay_env
from tests.support.raw_daemon import RawDaemon, raw_daemon, split_frames
from tests.support.replay_server import ReplayServer


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Sample\n")
    return root


async def _still_alive(daemon: RawDaemon) -> None:
    answer = await daemon.request("session/list", {})
    assert "result" in answer, answer


@pytest.mark.parametrize("framing", ["ndjson", "content-length"])
async def test_malformed_frames_get_errors_and_the_daemon_goes_on(
    tmp_path: Path, framing: str
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home"), framing) as daemon:
        await daemon.initialize()
        await daemon.send_bytes(daemon.frame(b'{"jsonrpc": "2.0", "id": 7, "method": '))
        parse_error = await daemon.receive()
        assert parse_error["error"]["code"] == -32700
        assert parse_error["id"] is None

        await daemon.send_bytes(daemon.frame(b'{"id": 8, "method": "session/list"}'))
        no_version = await daemon.receive()
        assert no_version["error"]["code"] == -32600 and no_version["id"] == 8
        assert "jsonrpc" in no_version["error"]["message"]

        # A batch of three things that are no requests: three errors, in one array.
        await daemon.send_bytes(daemon.frame(b"[1, 2, 3]"))
        batch = await daemon.receive_frame()
        assert isinstance(batch, list)
        assert [(answer["id"], answer["error"]["code"]) for answer in batch] == [(None, -32600)] * 3

        unknown = await daemon.request("session/dance", {})
        assert unknown["error"]["code"] == -32601
        assert "session/dance" in unknown["error"]["message"]

        wrong = await daemon.request("session/new", {"cwd": 42})
        assert wrong["error"]["code"] == -32602
        assert "cwd" in wrong["error"]["message"]
        await _still_alive(daemon)


async def test_a_frame_of_ten_megabytes_is_handled(tmp_path: Path) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        await daemon.initialize()
        huge = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "session/list",
            "params": {"cwd": "/", "_meta": {"padding": "x" * 10_000_000}},
        }
        await daemon.send(huge)
        answer = await daemon.receive()
        assert answer["id"] == 1 and "result" in answer
        await _still_alive(daemon)


async def test_requests_before_initialize_are_refused_clearly(tmp_path: Path) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        early = await daemon.request("session/list", {})
        assert early["error"]["code"] == -32003
        assert "initialize" in early["error"]["message"]
        await daemon.initialize()
        await _still_alive(daemon)


async def test_unknown_session_relative_cwd_and_missing_session(
    tmp_path: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        await daemon.initialize()
        prompt = await daemon.request(
            "session/prompt",
            {"sessionId": "sess_nope", "prompt": [{"type": "text", "text": "hi"}]},
        )
        assert prompt["error"]["code"] == -32002
        assert "unknown session" in prompt["error"]["message"]

        relative = await daemon.request("session/new", {"cwd": "relative/dir", "mcpServers": []})
        assert relative["error"]["code"] == -32602
        assert "absolute" in relative["error"]["message"]

        load = await daemon.request(
            "session/load",
            {"sessionId": "sess_0123abcd", "cwd": str(workspace), "mcpServers": []},
        )
        assert load["error"]["code"] == -32002
        traversal = await daemon.request(
            "session/load",
            {"sessionId": "../../etc", "cwd": str(workspace), "mcpServers": []},
        )
        assert traversal["error"]["code"] == -32002
        await _still_alive(daemon)


async def test_missing_api_key_names_what_to_set(tmp_path: Path, workspace: Path) -> None:
    env = offline_env(tmp_path / "home")
    env["PARLEY_PROVIDER"] = "openai"
    async with raw_daemon(env) as daemon:
        await daemon.initialize()
        answer = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
        assert answer["error"]["code"] == -32011
        assert "OPENAI_API_KEY" in answer["error"]["message"]
        await _still_alive(daemon)


@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected"),
    [
        (401, "application/json", b'{"error": {"message": "Incorrect API key"}}', "OPENAI_API_KEY"),
        (500, "application/json", b'{"error": {"message": "upstream exploded"}}', "exploded"),
        (200, "text/event-stream", b"data: {not json at all\n\n", "protocol"),
    ],
)
async def test_provider_failures_end_the_prompt_with_a_clear_error(
    tmp_path: Path,
    workspace: Path,
    status: int,
    content_type: str,
    body: bytes,
    expected: str,
) -> None:
    async with ReplayServer() as provider:
        provider.enqueue(status, content_type, body)
        provider.enqueue_fixture("openai_chat/text_usage_chunk")
        # One try: a 500 would be tried again (test_model_calls.py), and answered.
        env = {**replay_env(tmp_path / "home", provider.url), "PARLEY_MODEL_ATTEMPTS": "1"}
        async with raw_daemon(env) as daemon:
            await daemon.initialize()
            session = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
            session_id = session["result"]["sessionId"]
            prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": "hi"}]}
            failed = await daemon.request("session/prompt", prompt)
            assert failed["error"]["code"] == -32010
            assert expected in failed["error"]["message"]
            # The same session answers the next prompt from a healthy provider.
            recovered = await daemon.request("session/prompt", prompt)
            assert recovered["result"]["stopReason"] == "end_turn"
    log = (tmp_path / "home" / "sessions" / session_id / "log.jsonl").read_text()
    kinds = [json.loads(line)["type"] for line in log.splitlines()]
    assert kinds.count("user") == 2 and kinds.count("turn_end") == 2


async def test_closing_stdin_mid_turn_saves_what_was_said_and_exits(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        session = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
        session_id = session["result"]["sessionId"]
        await daemon.send(
            {
                "jsonrpc": "2.0",
                "id": 99,
                "method": "session/prompt",
                "params": {
                    "sessionId": session_id,
                    "prompt": [{"type": "text", "text": "Tell me a long story"}],
                },
            }
        )
        streamed = 0
        while streamed < 20:
            frame = await daemon.receive()
            if frame.get("params", {}).get("update", {}).get("sessionUpdate") == (
                "agent_message_chunk"
            ):
                streamed += 1
        assert daemon.process.stdin is not None
        daemon.process.stdin.close()
        code = await asyncio.wait_for(daemon.process.wait(), 10)
    assert code == 0
    records = [
        json.loads(line)
        for line in (home / "sessions" / session_id / "log.jsonl").read_text().splitlines()
    ]
    responses = [r for r in records if r["type"] == "response"]
    assert responses and responses[-1]["interrupted"] is True
    (text,) = [p["text"] for p in responses[-1]["message"]["parts"] if p["type"] == "text"]
    assert len(text) >= 20  # at least the 20 chunks seen, one part
    # Paused for the next client, not ended: the turn's last records.
    assert [r["type"] for r in records[-2:]] == ["turn_pause", "response"]


async def test_a_stream_that_fails_mid_tool_call_closes_the_call(
    tmp_path: Path, workspace: Path
) -> None:
    started = {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_cut",
                            "type": "function",
                            "function": {"name": "read_file", "arguments": '{"pa'},
                        }
                    ]
                },
            }
        ]
    }
    failure = {"error": {"message": "overloaded, try later", "code": "server_error"}}
    body = b"".join(b"data: %b\n\n" % json.dumps(chunk).encode() for chunk in (started, failure))
    async with ReplayServer() as provider:
        provider.enqueue(200, "text/event-stream", body)
        provider.enqueue_fixture("openai_chat/text_usage_chunk")
        async with raw_daemon(replay_env(tmp_path / "home", provider.url)) as daemon:
            await daemon.initialize()
            session = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
            prompt = {
                "sessionId": session["result"]["sessionId"],
                "prompt": [{"type": "text", "text": "read it"}],
            }
            failed = await daemon.request("session/prompt", prompt)
            assert "overloaded" in failed["error"]["message"]
            updates = [f["params"]["update"] for f in daemon.frames if f.get("method")]
            call_updates = [u for u in updates if u.get("toolCallId") == "call_cut"]
            assert [u.get("status") for u in call_updates] == ["pending", "failed"]
            recovered = await daemon.request("session/prompt", prompt)
            assert recovered["result"]["stopReason"] == "end_turn"
        # The unfinished call is not in the history sent next: it was never complete.
        second = provider.requests[1].json["messages"]
        assert [m["role"] for m in second] == ["system", "user", "user"]


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}


def frame_as(framing: str, message: object) -> bytes:
    body = json.dumps(message).encode()
    if framing == "content-length":
        return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    return body + b"\n"


def run_piped(home: Path, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    """parleyd with `stdin` piped in and closed, and its stdout a pipe, as in
    `printf ... | parleyd | cat`."""
    return subprocess.run(
        PARLEYD, input=stdin, env=offline_env(home), capture_output=True, timeout=60, check=False
    )


def answers_in(framing: str, stdout: bytes) -> dict[Any, dict[str, Any]]:
    return {frame["id"]: frame for frame in split_frames(stdout, framing) if "id" in frame}


@pytest.mark.parametrize("framing", ["ndjson", "content-length"])
def test_a_single_piped_request_is_answered_before_the_daemon_exits(
    tmp_path: Path, framing: str
) -> None:
    run = run_piped(tmp_path / "home", frame_as(framing, INITIALIZE))
    assert run.returncode == 0, run.stderr
    assert answers_in(framing, run.stdout)[1]["result"]


@pytest.mark.parametrize("framing", ["ndjson", "content-length"])
def test_requests_piped_in_before_stdin_closes_are_all_answered(
    tmp_path: Path, workspace: Path, framing: str
) -> None:
    requests = [
        INITIALIZE,
        {"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": str(workspace)}},
        {"jsonrpc": "2.0", "id": 3, "method": "session/list", "params": {}},
        {"jsonrpc": "2.0", "id": 4, "method": "session/dance", "params": {}},
    ]
    run = run_piped(tmp_path / "home", b"".join(frame_as(framing, r) for r in requests))
    assert run.returncode == 0, run.stderr
    answers = answers_in(framing, run.stdout)
    assert set(answers) == {1, 2, 3, 4}
    assert all("result" in answers[n] for n in (1, 2, 3)), answers
    assert answers[4]["error"]


def test_stdin_from_dev_null_exits_at_once_and_quietly(tmp_path: Path) -> None:
    with Path(os.devnull).open("rb") as nothing:
        run = subprocess.run(
            PARLEYD,
            stdin=nothing,
            env=offline_env(tmp_path / "home"),
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert (run.returncode, run.stdout) == (0, b"")
    assert b"Traceback" not in run.stderr, run.stderr.decode()


@pytest.mark.parametrize("first_line", [b"hello\n", b"\n", b"Content-Length 12\n", b"}{\n"])
def test_a_garbage_first_line_does_not_lose_the_connection(
    tmp_path: Path, first_line: bytes
) -> None:
    run = run_piped(tmp_path / "home", first_line + frame_as("ndjson", INITIALIZE))
    assert run.returncode == 0, run.stderr
    answers = answers_in("ndjson", run.stdout)
    assert answers[1]["result"]
    errors = [answer for key, answer in answers.items() if key is None]
    assert len(errors) == (0 if first_line == b"\n" else 1)


async def test_unknown_session_settings_are_refused_by_name(
    tmp_path: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        await daemon.initialize()
        answer = await daemon.request(
            "session/new",
            {"cwd": str(workspace), "_meta": {"parley": {"temperature": 0.2}}},
        )
        assert answer["error"]["code"] == -32602
        assert "temperature" in answer["error"]["message"]


async def test_a_newer_protocol_version_is_answered_with_the_one_parley_speaks(
    tmp_path: Path,
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        answer = await daemon.request("initialize", {"protocolVersion": 7})
        assert answer["result"]["protocolVersion"] == 1


async def test_an_unreachable_provider_names_what_to_set(tmp_path: Path, workspace: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens there.
    env = replay_env(tmp_path / "home", "http://127.0.0.1:9")
    async with raw_daemon(env) as daemon:
        await daemon.initialize()
        session = await daemon.request("session/new", {"cwd": str(workspace)})
        answer = await daemon.request(
            "session/prompt",
            {
                "sessionId": session["result"]["sessionId"],
                "prompt": [{"type": "text", "text": "hello"}],
            },
        )
        assert answer["error"]["code"] == -32010
        assert "OPENAI_BASE_URL" in answer["error"]["message"]
        assert answer["error"]["data"]["kind"] == "network"
        await _still_alive(daemon)


async def test_a_frame_nested_ten_thousand_deep_is_a_parse_error(tmp_path: Path) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        await daemon.initialize()
        depth = 10_000
        deep = b'{"jsonrpc": "2.0", "id": 5, "method": "session/list", "params": {"cwd": '
        await daemon.send_bytes(daemon.frame(deep + b"[" * depth + b"]" * depth + b"}}"))
        answer = await daemon.receive()
        assert (answer["id"], answer["error"]["code"]) == (None, -32700)
        assert "nested too deeply" in answer["error"]["message"]
        await _still_alive(daemon)


async def test_content_length_recovers_at_the_next_header_block(tmp_path: Path) -> None:
    async with raw_daemon(offline_env(tmp_path / "home"), "content-length") as daemon:
        await daemon.initialize()
        request = json.dumps({"jsonrpc": "2.0", "id": 6, "method": "session/list"}).encode()
        for bad in (b"Content-Length: six", b"Content-Type: application/json"):
            await daemon.send_bytes(bad + b"\r\n\r\n" + request)
            answer = await daemon.receive()
            assert (answer["id"], answer["error"]["code"]) == (None, -32700)
            await _still_alive(daemon)


async def test_a_batch_is_answered_as_one_array(tmp_path: Path) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        batch = [
            INITIALIZE,
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "sess_x"}},
            {"jsonrpc": "2.0", "id": 2, "method": "session/list", "params": {}},
        ]
        await daemon.send_batch(batch)
        answers = await daemon.receive_frame()
        assert isinstance(answers, list)
        assert [answer["id"] for answer in answers] == [1, 2]
        assert all("result" in answer for answer in answers)


async def test_a_ten_megabyte_cwd_is_invalid_params_with_a_short_message(
    tmp_path: Path,
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        await daemon.initialize()
        answer = await daemon.request("session/new", {"cwd": "/" + "d" * 10_000_000})
        assert answer["error"]["code"] == -32602
        assert "cwd" in answer["error"]["message"]
        assert len(answer["error"]["message"]) < 400
        await _still_alive(daemon)
