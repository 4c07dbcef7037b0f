"""What a tool's result attached (images, audio, files): kept once in its
record, as the ACP content the finished call shows the client, and read back
from the log for the model's next request and for a replay."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from parley_protocol.acp import ToolCallProgress, ToolCallStart
from parleyd.providers.messages import (
    AssistantMessage,
    Attachment,
    ToolCall,
    ToolResultMessage,
)
from parleyd.providers.openai_chat import OpenAIChatProvider
from parleyd.session.replay import restore
from parleyd.session.updates import display_content, tool_call_finished
from parleyd.session.user_input import tool_result_message
from parleyd.store.blobs import BLOB_THRESHOLD_CHARS, BLOBS_DIR
from parleyd.store.log import LOG_NAME, SessionLog, read_log
from parleyd.store.records import (
    AssistantResponse,
    ConversationStarted,
    CurrentRecord,
    SessionStarted,
    ToolOutcome,
    UserTurn,
)
from parleyd.tools.base import ToolContext, ToolKind, ToolResult
from tests.support.in_process import RecordingChannel, in_process_session
from tests.support.replay_server import ReplayServer

ROOT = "conv_root"
CALL = ToolCall("call_1", "screenshot", "{}")
SHOT = Attachment("image/png", "iVBORw0KGgo=", "file:///w/shot.png")
SOUND = Attachment("audio/wav", "UklGRg==")  # ACP's audio block names none
ARCHIVE = Attachment("application/zip", "UEsDBA==", "file:///w/site.zip")
# The image as ACP shows it.
SHOWN_SHOT = {
    "type": "image",
    "data": "iVBORw0KGgo=",
    "mimeType": "image/png",
    "uri": "file:///w/shot.png",
}


def outcome(result: ToolResult) -> ToolOutcome:
    """The call's record, as the agent loop builds it from what the tool returned."""
    return ToolOutcome(
        call_id=CALL.id,
        name=CALL.name,
        status="completed",
        output=result.output,
        content=display_content(result),
    )


def large_image() -> Attachment:
    data = base64.b64encode(bytes(range(256)) * (BLOB_THRESHOLD_CHARS // 256)).decode()
    assert len(data) > BLOB_THRESHOLD_CHARS
    return Attachment("image/png", data, "file:///w/large.png")


def logged(opened: SessionLog, result: ToolResult) -> None:
    """A session whose one turn made the call and got `result`."""
    for record in (
        SessionStarted(session_id="sess_1", cwd="/w", settings={}),
        ConversationStarted(),
        UserTurn(text="Show me", content=[{"type": "text", "text": "Show me"}], message_id="u-1"),
        AssistantResponse(
            message=AssistantMessage(parts=(CALL,)), message_id="a-1", model="gpt-4o"
        ),
        outcome(result),
    ):
        opened.append(record, ROOT)


def reread(folder: Path) -> list[CurrentRecord]:
    contents = read_log(folder)
    assert contents.malformed_lines == 0
    return contents.records


def test_the_finished_call_shows_each_attachment_after_the_text() -> None:
    result = ToolResult("The page.", attachments=(SHOT, SOUND, ARCHIVE))
    finished = msgspec.to_builtins(tool_call_finished(outcome(result), {}))
    assert finished["status"] == "completed"
    assert finished["content"] == [
        {"type": "content", "content": {"type": "text", "text": "The page."}},
        {"type": "content", "content": SHOWN_SHOT},
        {
            "type": "content",
            "content": {"type": "audio", "data": "UklGRg==", "mimeType": "audio/wav"},
        },
        {
            "type": "content",
            "content": {
                "type": "resource",
                "resource": {
                    "uri": "file:///w/site.zip",
                    "mimeType": "application/zip",
                    "blob": "UEsDBA==",
                },
            },
        },
    ]


def test_the_model_reads_what_the_client_is_shown_from_the_log(
    folder: Path, opened: SessionLog
) -> None:
    logged(opened, ToolResult("The page.", attachments=(SHOT, SOUND, ARCHIVE)))
    # Stored once: in the content the client is shown, which the model's copy is read from.
    assert (folder / LOG_NAME).read_text().count(SHOT.data) == 1

    restored = restore(reread(folder))
    assert restored.root.history[-1] == ToolResultMessage(
        call_id=CALL.id,
        name=CALL.name,
        content="The page.",
        attachments=(SHOT, SOUND, ARCHIVE),
    )
    (call,) = [update for update, _ in restored.updates if isinstance(update, ToolCallStart)]
    replayed = msgspec.to_builtins(call)
    assert replayed["status"] == "completed"
    assert {"type": "content", "content": SHOWN_SHOT} in replayed["content"]


def test_a_result_without_attachments_gives_the_model_its_text_alone(
    folder: Path, opened: SessionLog
) -> None:
    logged(opened, ToolResult("plain"))
    (result,) = [r for r in reread(folder) if isinstance(r, ToolOutcome)]
    assert tool_result_message(result) == ToolResultMessage(
        call_id=CALL.id, name=CALL.name, content="plain"
    )


def test_a_large_image_goes_to_a_blob_and_comes_back_whole(
    folder: Path, opened: SessionLog
) -> None:
    image = large_image()
    logged(opened, ToolResult("A large one.", attachments=(image,)))

    line = json.loads((folder / LOG_NAME).read_text().splitlines()[-1])
    assert list(line["blobs"]) == ["/content/1/content/data"]
    assert image.data not in (folder / LOG_NAME).read_text()
    assert (folder / BLOBS_DIR / line["blobs"]["/content/1/content/data"]).exists()

    (result,) = [r for r in reread(folder) if isinstance(r, ToolOutcome)]
    assert tool_result_message(result).attachments == (image,)


def test_an_image_whose_blob_is_lost_is_left_out_of_what_the_model_reads(
    folder: Path, opened: SessionLog
) -> None:
    logged(opened, ToolResult("A large one.", attachments=(large_image(),)))
    shutil.rmtree(folder / BLOBS_DIR)

    # The load goes on: sending what is left of it would have every later
    # request refused.
    (result,) = [r for r in reread(folder) if isinstance(r, ToolOutcome)]
    assert tool_result_message(result) == ToolResultMessage(
        call_id=CALL.id, name=CALL.name, content="A large one."
    )


class Screenshot:
    """A stand-in for an MCP tool that returns an image, named as the call the
    recorded stream makes."""

    name = "get_capital"
    description = "Shows the capital."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    kind: ToolKind = "read"
    needs_permission = False

    def title(self, arguments: Mapping[str, Any]) -> str:
        return "Capital"

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult("London.", attachments=(SHOT,))


async def test_a_turn_sends_the_image_to_the_model_and_shows_it_to_the_client(
    tmp_path: Path,
) -> None:
    async with ReplayServer() as server:
        server.enqueue_fixture("openai_chat/tool_call")
        server.enqueue_fixture("openai_chat/text_usage_chunk")
        provider = OpenAIChatProvider(f"{server.url}/v1", "sk-test", idle_timeout=10)
        session = in_process_session(tmp_path, provider, Screenshot())
        assert await session.prompt("What is the capital?", []) == "end_turn"
        await session.close()

    # The model's next request: the call's text, then the image after it.
    *_, result, attached = server.requests[1].json["messages"]
    assert (result["role"], result["content"]) == ("tool", "London.")
    assert attached["role"] == "user"
    assert attached["content"][1] == {"type": "image_url", "image_url": {"url": SHOT.data_url}}
    # The client's finished call.
    channel = session.channel
    assert isinstance(channel, RecordingChannel)
    (finished,) = [
        update
        for update in channel.updates
        if isinstance(update, ToolCallProgress) and update.status == "completed"
    ]
    assert {"type": "content", "content": SHOWN_SHOT} in msgspec.to_builtins(finished)["content"]
    # And what a load reads back, for the next turn.
    (recorded,) = [r for r in reread(session.log.folder) if isinstance(r, ToolOutcome)]
    assert tool_result_message(recorded).attachments == (SHOT,)
