"""What every Ollama `/api/chat` case, recorded or written, gives (see
`provider_cases`). A call Ollama sent without an id (before 0.12.10) gets one
made from its line: `GENERATED` stands for it here."""

from __future__ import annotations

import re
from collections.abc import Sequence

from parleyd.providers.events import (
    Done,
    ProviderEvent,
    StreamError,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from tests.support.provider_cases import (
    URL,
    Call,
    InOrder,
    Outcome,
    RecordedCases,
    Text,
    Thinking,
    assert_well_formed,
)
from tests.support.providers_under_test import OLLAMA

GENERATED = re.compile(r"call_[0-9a-f]{12}_\d+")

EXPECTED: dict[str, Outcome] = {
    "cut_without_done": InOrder(
        parts=(Text("Once upon a time, in"),),
        end=StreamError(kind="protocol", message="stream ended before the model finished"),
    ),
    "done_reason_length": InOrder(
        parts=(
            Text(
                "Hello there! I\u2019m doing well, thanks for asking. As an AI, I don\u2019t"
                " really *feel* in the same way humans do, but I\u2019m functioning perfectly"
                " and ready to help you with whatever you need. \U0001f60a "
            ),
        ),
        usage=Usage(input_tokens=15, output_tokens=50),
        end=Done("max_tokens", "length"),
    ),
    "error_mid_stream": InOrder(
        parts=(Text("The sky is blue because"),),
        # No status comes with it, and the words name no kind Parley knows.
        end=StreamError(kind="fatal", message="an error was encountered while running the model"),
    ),
    "model_not_found_404": InOrder(
        end=StreamError(
            kind="bad_request",
            message=f"{URL} answered 404 for model 'test-model': model 'llama9' not found."
            " Check the model name and OLLAMA_HOST.",
            status=404,
        ),
    ),
    "text": InOrder(
        parts=(Text("Okay, here we go!\n\n1, 2, 3, 4, 5\n"),),
        usage=Usage(input_tokens=16, output_tokens=22),
        end=Done("end_turn", "stop"),
    ),
    "thinking": InOrder(
        parts=(
            Thinking(
                'User asks: "Count from 1 to 5". Simple. Respond with numbers: 1 2 3 4 5.'
                " Possibly each on separate line. Provide answer."
            ),
            Text("1  \n2  \n3  \n4  \n5"),
        ),
        usage=Usage(input_tokens=74, output_tokens=57),
        end=Done("end_turn", "stop"),
    ),
    "thinking_by_default": InOrder(
        parts=(
            Thinking(
                "Okay, the user asks for 17 \u00d7 23.\n"
                "17 \u00d7 20 = 340, 17 \u00d7 3 = 51; 340 + 51 = 391.\n"
            ),
            Text("17 \u00d7 23 = **391**"),
        ),
        usage=Usage(input_tokens=18, output_tokens=37),
        end=Done("end_turn", "stop"),
    ),
    "tool_calls_streamed": InOrder(
        parts=(
            Thinking(
                "The user wants the weather in New York."
                " I should call get_temperature and get_conditions."
            ),
            Call(GENERATED, "get_temperature", '{"city":"New York"}'),
            Call(GENERATED, "get_conditions", '{"city":"New York","units":"metric"}'),
        ),
        usage=Usage(input_tokens=215, output_tokens=71),
        end=Done("tool_use", "stop"),  # Ollama says "stop" after tool calls
    ),
    "tool_calls_with_thinking_nonstream": InOrder(
        parts=(
            Thinking("User asks about weather in San Francisco. Use function getWeather."),
            Call("call_mo1wm122", "getWeather", '{"location":"San Francisco, CA"}'),
        ),
        usage=Usage(input_tokens=145, output_tokens=44),
        end=Done("tool_use", "stop"),
    ),
}


class TestRecordedCases(RecordedCases):
    provider = OLLAMA
    expected = EXPECTED

    def assert_well_formed(self, events: Sequence[ProviderEvent]) -> None:
        """Besides: usage comes with every Done and only then; each call comes
        whole in one line, so its start, its one delta and its end stand side
        by side."""
        assert_well_formed(events)
        usage = [i for i, event in enumerate(events) if isinstance(event, Usage)]
        assert usage == ([len(events) - 2] if isinstance(events[-1], Done) else [])
        for i, event in enumerate(events):
            if isinstance(event, ToolCallStart):
                streamed, end = events[i + 1], events[i + 2]
                assert isinstance(streamed, ToolCallArgumentsDelta)
                assert isinstance(end, ToolCallEnd)
                assert streamed.call_id == end.call_id == event.call_id
