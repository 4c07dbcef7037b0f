"""Where a compaction cuts a history, and what the model reads after it."""

from __future__ import annotations

from parleyd.providers.messages import (
    AssistantMessage,
    Attachment,
    Message,
    TextPart,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from parleyd.session.compaction import (
    SUMMARY_HEADING,
    SUMMARY_REQUEST,
    compacted,
    estimate_tokens,
    split,
    summary_request,
)

CALL = ToolCall(id="c1", name="read_file", arguments='{"path": "a"}')


def _turn(prompt: str) -> list[Message]:
    return [
        UserMessage(text=prompt),
        AssistantMessage(parts=(CALL,)),
        ToolResultMessage(call_id="c1", name="read_file", content="text"),
        AssistantMessage(parts=(TextPart("done"),)),
    ]


def test_the_latest_prompt_and_what_follows_it_are_kept() -> None:
    history = [*_turn("one"), *_turn("two")[:3]]
    cut = split(history)
    assert cut is not None
    assert cut.older == _turn("one")
    assert cut.kept == _turn("two")[:3]


def test_nothing_before_the_first_response_of_a_first_turn_can_be_compacted() -> None:
    assert split([]) is None
    assert split(_turn("only")[:3]) is None
    assert split(compacted("earlier", _turn("now"))[:3]) is None


def test_a_first_turn_is_cut_at_its_latest_response() -> None:
    # A sub-agent's only turn, or a long first one: its earlier steps go.
    for history in (_turn("only"), compacted("earlier", _turn("now"))):
        cut = split(history)
        assert cut is not None
        assert (cut.older, cut.kept) == (history[:-1], history[-1:])


def test_the_summary_stands_in_for_the_older_history() -> None:
    history = compacted("- The user asked: one", _turn("two"))
    first = history[0]
    assert isinstance(first, UserMessage)
    assert first.text == f"{SUMMARY_HEADING}\n\n- The user asked: one"
    assert history[1:] == _turn("two")
    # A later compaction summarises the summary and the turn after it.
    cut = split([*history, UserMessage(text="three")])
    assert cut is not None and cut.older[0] == first


def test_the_summary_is_asked_for_without_tools() -> None:
    request = summary_request("m", _turn("one"), 500)
    assert request.tools == ()
    assert request.messages[-1] == UserMessage(text=SUMMARY_REQUEST)
    assert request.max_output_tokens == 500


def test_a_results_attachments_weigh_what_a_prompts_do() -> None:
    # A screenshot weighs its pixels, not its base64 read as text.
    shot = Attachment("image/png", "A" * 400_000)
    prompt = estimate_tokens([UserMessage("look", attachments=(shot,))], "")
    result = estimate_tokens([ToolResultMessage("c1", "shot", "look", attachments=(shot,))], "")
    assert result == prompt > estimate_tokens([UserMessage("look")], "")
    assert result < len(shot.data) // 4
