"""Queued messages through the real daemon: `_parley/session/inject` mode
`queue`, `_parley/session/queue/list|replace|withdraw`, and the busy-prompt
policy (`prompt_while_running`), against the scripted model served on
loopback, which keeps every request it is sent: what reached the model is
checked there. A first turn is held running by a permission question the
test answers when it is ready, so nothing here depends on timing."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import acp
import pytest
from acp import text_block

from parley_protocol.jsonrpc import ErrorCode
from parley_protocol.parley import (
    SESSION_INJECT,
    SESSION_QUEUE_LIST,
    SESSION_QUEUE_REPLACE,
    SESSION_QUEUE_WITHDRAW,
)
from parleyd.offline.http import HttpRequest, HttpResponder
from parleyd.offline.model_server import ScriptedModelServer
from parleyd.offline.script import MODEL_ID
from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.daemon import replay_env
from tests.support.raw_daemon import RawDaemon, raw_daemon

WRITE = 'Write a note saying "ship it"'
FIRST_ID = 70


class RecordingModel(ScriptedModelServer):
    """The scripted model at full speed, keeping every request body; the
    requests numbered (from 1) in `refused` get a 400 instead of an answer."""

    def __init__(self, refused: frozenset[int] = frozenset()) -> None:
        super().__init__(pace=0)
        self.requests: list[dict[str, Any]] = []
        self._refused = refused

    async def _handle(self, request: HttpRequest, responder: HttpResponder) -> None:
        if request.method == "POST":
            self.requests.append(request.json())
            if len(self.requests) in self._refused:
                await self._send_error(responder, 400, "refused by the test", "invalid_request")
                return
        await super()._handle(request, responder)

    def user_words(self) -> list[str]:
        """Every user message the model read, once each, in the order it came."""
        seen: list[str] = []
        for body in self.requests:
            for message in body["messages"]:
                if message["role"] == "user" and message["content"] not in seen:
                    seen.append(message["content"])
        return seen


@pytest.fixture
async def model() -> AsyncIterator[RecordingModel]:
    async with RecordingModel() as server:
        yield server


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Queued\n\nA project to read when asked.\n")
    return root


def _env(home: Path, model: RecordingModel, **settings: str) -> dict[str, str]:
    return {**replay_env(home, model.url, model=MODEL_ID), **settings}


def _text(words: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": words}]


def _turn(update: Mapping[str, Any]) -> dict[str, Any] | None:
    """The turn status a `session_info_update` tells, if it tells one."""
    if update.get("sessionUpdate") != "session_info_update":
        return None
    turn: dict[str, Any] | None = update["_meta"]["parley"].get("turn")
    return turn


# -- through the ACP Python SDK --------------------------------------------------


@dataclass
class HeldClient(RecordingClient):
    """Answers a permission question once `release` is set."""

    asked: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **rest: Any
    ) -> Any:
        self.asked.set()
        await self.release.wait()
        return await super().request_permission(session_id, tool_call, options, **rest)


def _sdk_turn(update: Any) -> dict[str, Any] | None:
    if update.session_update != "session_info_update":
        return None
    turn: dict[str, Any] | None = update.field_meta["parley"].get("turn")
    return turn


async def _sdk_error(call: Any) -> acp.RequestError:
    with pytest.raises(acp.RequestError) as raised:
        await call
    return raised.value


async def test_a_queued_message_is_listed_replaced_or_withdrawn_then_opens_the_next_turn(
    home: Path, workspace: Path, model: RecordingModel
) -> None:
    client = HeldClient()
    async with acp_daemon(_env(home, model), client) as (connection, _):
        await connection.initialize(protocol_version=1)
        session_id = (await connection.new_session(cwd=str(workspace), mcp_servers=[])).session_id
        first = asyncio.ensure_future(
            connection.prompt(session_id=session_id, prompt=[text_block(WRITE)])
        )
        await asyncio.wait_for(client.asked.wait(), 30)

        async def ext(method: str, **params: Any) -> dict[str, Any]:
            # The SDK adds an extension method's leading underscore itself.
            return await connection.ext_method(method[1:], {"sessionId": session_id, **params})

        listed = (await ext(SESSION_INJECT, prompt=_text("list the files"), mode="queue"))[
            "messageId"
        ]
        kept = (await ext(SESSION_INJECT, prompt=_text("search for TODO"), mode="queue"))[
            "messageId"
        ]
        queue = (await ext(SESSION_QUEUE_LIST))["messages"]
        assert [(m["messageId"], m["prompt"][0]["text"], m["origin"]) for m in queue] == [
            (listed, "list the files", "inject"),
            (kept, "search for TODO", "inject"),
        ]
        assert await ext(SESSION_QUEUE_WITHDRAW, messageId=listed) == {}
        replaced = await ext(SESSION_QUEUE_REPLACE, messageId=kept, prompt=_text("Read README.md"))
        assert replaced == {}
        queue = (await ext(SESSION_QUEUE_LIST))["messages"]
        assert [(m["messageId"], m["prompt"][0]["text"]) for m in queue] == [
            (kept, "Read README.md")
        ]
        # The default policy: a prompt while a turn runs is refused, saying
        # how to queue it instead.
        busy = await _sdk_error(
            connection.prompt(session_id=session_id, prompt=[text_block("and then?")])
        )
        assert busy.code == ErrorCode.SESSION_BUSY and '"queue"' in str(busy)
        withdrawn = await _sdk_error(ext(SESSION_QUEUE_WITHDRAW, messageId=listed))
        assert withdrawn.code == ErrorCode.WRONG_TURN_STATE and "withdrawn" in str(withdrawn)
        unknown = await _sdk_error(ext(SESSION_QUEUE_REPLACE, messageId="msg_nothere", prompt=[]))
        assert unknown.code == ErrorCode.RESOURCE_NOT_FOUND and "msg_nothere" in str(unknown)

        client.release.set()
        assert (await asyncio.wait_for(first, 30)).stop_reason == "end_turn"
        ended = await asyncio.wait_for(
            client.wait_for(lambda u: (_sdk_turn(u) or {}).get("state") == "idle"), 30
        )
        taken = await _sdk_error(ext(SESSION_QUEUE_WITHDRAW, messageId=kept))
        assert (await ext(SESSION_QUEUE_LIST))["messages"] == []
    assert taken.code == ErrorCode.WRONG_TURN_STATE and "taken" in str(taken)
    assert _sdk_turn(ended) == {
        "state": "idle",
        "reason": None,
        "stopReason": "end_turn",
        "messageId": kept,
    }
    # The message opened a turn of its own, told as it began, after the first
    # prompt had its answer; it is shown with the id the client was given.
    frames = client.frames
    answered = next(
        i for i, f in enumerate(frames) if "result" in f and "stopReason" in f["result"]
    )
    began = next(
        i
        for i, f in enumerate(frames)
        if (_turn(f.get("params", {}).get("update", {})) or {}).get("state") == "running"
    )
    assert answered < began
    shown = [u for u in client.updates if u.session_update == "user_message_chunk"]
    assert [(u.message_id, u.content.text) for u in shown] == [(kept, "Read README.md")]
    reads = [u for u in client.updates if getattr(u, "title", None) == "Read README.md"]
    assert reads, "the model never acted on the queued message"
    # The model read the queued message in its replaced words, after the
    # first prompt, and never the words withdrawn or replaced.
    assert model.user_words() == [WRITE, "Read README.md"]

    replayed = RecordingClient()
    async with acp_daemon(_env(home, model), replayed) as (connection, _):
        await connection.initialize(protocol_version=1)
        await connection.load_session(cwd=str(workspace), session_id=session_id, mcp_servers=[])
        queue = await connection.ext_method(SESSION_QUEUE_LIST[1:], {"sessionId": session_id})
    assert queue == {"messages": []}
    again = [u for u in replayed.updates if u.session_update == "user_message_chunk"]
    assert [u.content.text for u in again] == [WRITE, "Read README.md"]
    assert again[1].message_id == kept


# -- over raw frames ----------------------------------------------------------------


async def _held(daemon: RawDaemon, workspace: Path) -> tuple[str, dict[str, Any]]:
    """A new session whose first prompt (FIRST_ID) waits for a permission
    answer; its id and the question, still unanswered."""
    await daemon.initialize()
    session_id = await daemon.new_session(workspace)
    await daemon.start_prompt(session_id, WRITE, FIRST_ID)
    question = await daemon.until(lambda f: f.get("method") == "session/request_permission")
    return session_id, question


async def _answer(daemon: RawDaemon, question: dict[str, Any]) -> None:
    outcome = {"outcome": "selected", "optionId": "allow_once"}
    await daemon.send({"jsonrpc": "2.0", "id": question["id"], "result": {"outcome": outcome}})


async def _queue(daemon: RawDaemon, session_id: str, words: str) -> str:
    answer = await daemon.request(
        SESSION_INJECT, {"sessionId": session_id, "prompt": _text(words), "mode": "queue"}
    )
    message_id: str = answer["result"]["messageId"]
    return message_id


async def _queued(daemon: RawDaemon, session_id: str) -> list[tuple[str, str, str]]:
    answer = await daemon.request(SESSION_QUEUE_LIST, {"sessionId": session_id})
    return [
        (m["messageId"], m["prompt"][0]["text"], m["origin"]) for m in answer["result"]["messages"]
    ]


def _answer_to(request_id: int) -> Any:
    return lambda frame: frame.get("id") == request_id and "method" not in frame


def _statuses(daemon: RawDaemon) -> list[dict[str, Any]]:
    return [
        turn
        for frame in daemon.frames
        if frame.get("method") == "session/update"
        and (turn := _turn(frame["params"]["update"])) is not None
    ]


def _event(frame: dict[str, Any], prompts: tuple[int, ...]) -> tuple[str, Any] | None:
    """A prompt's answer, or a turn status, in a frame; None for anything else."""
    if frame.get("id") in prompts and "method" not in frame:
        return ("answer", frame["id"])
    turn = _turn(frame.get("params", {}).get("update", {}))
    return None if turn is None else ("turn", turn["state"])


async def _answers(daemon: RawDaemon, *request_ids: int) -> list[dict[str, Any]]:
    """The answers to these requests, in whatever order they come."""

    def answered() -> dict[Any, dict[str, Any]]:
        return {
            f["id"]: f for f in daemon.frames if f.get("id") in request_ids and "method" not in f
        }

    while len(answered()) < len(request_ids):
        await daemon.receive()
    return [answered()[request_id] for request_id in request_ids]


def _told_idle(message_id: str) -> Any:
    def wanted(frame: dict[str, Any]) -> bool:
        turn = _turn(frame.get("params", {}).get("update", {})) or {}
        return turn.get("state") == "idle" and turn.get("messageId") == message_id

    return wanted


async def test_a_cancel_leaves_the_queue_waiting_and_it_outlives_the_daemon(
    home: Path, workspace: Path, model: RecordingModel
) -> None:
    async with raw_daemon(_env(home, model)) as daemon:
        session_id, _ = await _held(daemon, workspace)
        waiting = await _queue(daemon, session_id, "list the files")
        await daemon.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
        )
        cancelled = await daemon.until(_answer_to(FIRST_ID))
        assert cancelled["result"] == {"stopReason": "cancelled"}
        # Held by the cancel: the message waits, no turn took it.
        assert await _queued(daemon, session_id) == [(waiting, "list the files", "inject")]
        daemon.process.send_signal(signal.SIGKILL)
        await daemon.process.wait()

    async with raw_daemon(_env(home, model)) as daemon:
        await daemon.initialize()
        await daemon.load_session(session_id, workspace)
        replayed = [f["params"]["update"] for f in daemon.frames if f.get("method")]
        shown = [
            u["content"]["text"] for u in replayed if u["sessionUpdate"] == "user_message_chunk"
        ]
        assert shown == [WRITE]  # a waiting message is not a prompt yet
        assert await _queued(daemon, session_id) == [(waiting, "list the files", "inject")]
        # Queued while the session is idle: the queue goes on at once, the
        # message that waited first.
        later = await _queue(daemon, session_id, "search for TODO")
        await daemon.until(_told_idle(later))
        statuses = _statuses(daemon)
        taken = await daemon.request(
            SESSION_QUEUE_WITHDRAW, {"sessionId": session_id, "messageId": waiting}
        )
    assert [(s["state"], s["messageId"]) for s in statuses] == [
        ("running", waiting),
        ("idle", waiting),
        ("running", later),
        ("idle", later),
    ]
    assert taken["error"]["code"] == ErrorCode.WRONG_TURN_STATE
    assert waiting in taken["error"]["message"] and "taken" in taken["error"]["message"]
    assert model.user_words() == [WRITE, "list the files", "search for TODO"]


async def test_a_queued_message_after_a_failed_turn_still_runs(home: Path, workspace: Path) -> None:
    # The model refuses its second request: the first turn's, after the write.
    async with (
        RecordingModel(refused=frozenset({2})) as model,
        raw_daemon(_env(home, model)) as daemon,
    ):
        session_id, question = await _held(daemon, workspace)
        queued = await _queue(daemon, session_id, "list the files")
        await _answer(daemon, question)
        failed = await daemon.until(_answer_to(FIRST_ID))
        await daemon.until(_told_idle(queued))
    assert failed["error"]["code"] == ErrorCode.PROVIDER_ERROR
    assert model.user_words() == [WRITE, "list the files"]


async def test_prompts_while_a_turn_runs_are_queued_when_configured(
    home: Path, workspace: Path, model: RecordingModel
) -> None:
    env = _env(home, model, PARLEY_PROMPT_WHILE_RUNNING="queue")
    async with raw_daemon(env) as daemon:
        session_id, question = await _held(daemon, workspace)
        await daemon.start_prompt(session_id, "list the files", FIRST_ID + 1)
        await daemon.start_prompt(session_id, "search for TODO", FIRST_ID + 2)
        queue = await _queued(daemon, session_id)
        assert [(text, origin) for _, text, origin in queue] == [
            ("list the files", "prompt"),
            ("search for TODO", "prompt"),
        ]
        # `$/cancel_request` on a queued prompt withdraws it alone.
        await daemon.send(
            {"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": FIRST_ID + 2}}
        )
        withdrawn = await daemon.until(_answer_to(FIRST_ID + 2))
        assert withdrawn["result"] == {"stopReason": "cancelled"}
        await _answer(daemon, question)
        second = await daemon.until(_answer_to(FIRST_ID + 1))
        frames = daemon.frames
    assert second["result"] == {"stopReason": "end_turn"}
    order = [e for f in frames if (e := _event(f, (FIRST_ID, FIRST_ID + 1))) is not None]
    # Each prompt is answered with its own turn's end, the queued one's turn
    # told as it runs; the client is not shown again what it sent.
    assert order == [
        ("answer", FIRST_ID),
        ("turn", "running"),
        ("turn", "idle"),
        ("answer", FIRST_ID + 1),
    ]
    kinds = [
        f["params"]["update"]["sessionUpdate"]
        for f in frames
        if f.get("method") == "session/update"
    ]
    assert "user_message_chunk" not in kinds
    assert model.user_words() == [WRITE, "list the files"]


async def test_a_cancel_answers_the_queued_prompts_and_keeps_the_injected_messages(
    home: Path, workspace: Path, model: RecordingModel
) -> None:
    env = _env(home, model, PARLEY_PROMPT_WHILE_RUNNING="queue")
    async with raw_daemon(env) as daemon:
        session_id, _ = await _held(daemon, workspace)
        await daemon.start_prompt(session_id, "list the files", FIRST_ID + 1)
        injected = await _queue(daemon, session_id, "search for TODO")
        await daemon.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
        )
        answers = await _answers(daemon, FIRST_ID, FIRST_ID + 1)
        assert [a["result"] for a in answers] == [{"stopReason": "cancelled"}] * 2
        assert await _queued(daemon, session_id) == [(injected, "search for TODO", "inject")]
        # The next prompt runs at once, and the queue goes on after it.
        await daemon.start_prompt(session_id, "Read README.md", FIRST_ID + 2)
        await daemon.until(_answer_to(FIRST_ID + 2))
        await daemon.until(_told_idle(injected))
    assert model.user_words() == [WRITE, "Read README.md", "search for TODO"]


async def test_queue_requests_that_do_not_fit_say_why(
    home: Path, workspace: Path, model: RecordingModel
) -> None:
    async with raw_daemon(_env(home, model)) as daemon:
        await daemon.initialize()
        session_id = await daemon.new_session(workspace)
        unknown = await daemon.request(
            SESSION_QUEUE_WITHDRAW, {"sessionId": session_id, "messageId": "msg_nothere"}
        )
        no_session = await daemon.request(SESSION_QUEUE_LIST, {"sessionId": "sess_0000nothere"})
        bad = await daemon.request(SESSION_QUEUE_REPLACE, {"sessionId": session_id})
        # And the session still works.
        answer = await daemon.request(
            "session/prompt", {"sessionId": session_id, "prompt": _text("Hello")}
        )
    assert unknown["error"]["code"] == ErrorCode.RESOURCE_NOT_FOUND
    assert "msg_nothere" in unknown["error"]["message"]
    assert no_session["error"]["code"] == ErrorCode.RESOURCE_NOT_FOUND
    assert bad["error"]["code"] == ErrorCode.INVALID_PARAMS
    assert answer["result"] == {"stopReason": "end_turn"}
