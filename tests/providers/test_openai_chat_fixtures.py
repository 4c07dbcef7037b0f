"""What every recorded Chat Completions stream gives (see `provider_cases`)."""

from __future__ import annotations

from collections.abc import Sequence

from parleyd.providers.events import (
    Done,
    ProviderEvent,
    StreamError,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from tests.support.provider_cases import (
    ByKind,
    Call,
    Long,
    Outcome,
    RecordedCases,
    assert_well_formed,
)
from tests.support.providers_under_test import OPENAI_CHAT

EXPECTED: dict[str, Outcome] = {
    "deepseek_reasoning_content": ByKind(
        thinking=Long(
            882,
            "d29146ea4f40dfde7b6155babd3d948397e1b174950e603ef18518f0ff85585a",
            'Hmm, the user just said "Hello". It\'s a ',
            "not reply further - and that's okay too.",
        ),
        text="Hello there! \U0001f60a How can I help you today?",
        usage=Usage(input_tokens=6, output_tokens=212, reasoning_tokens=198),
        end=Done("end_turn", "stop"),
    ),
    "deepseek_reasoning_then_tool_call": ByKind(
        thinking="The user is asking for the weather in San Francisco. I need to use the weather"
        " tool to get this information. Let me invoke the weather tool with the location"
        ' parameter set to "San Francisco".',
        tool_calls=(
            Call("call_00_ioIn7yN9p1ZOMNpDLwd4MgAF", "weather", {"location": "San Francisco"}),
        ),
        usage=Usage(
            input_tokens=339, output_tokens=83, cached_input_tokens=320, reasoning_tokens=39
        ),
        end=Done("tool_use", "tool_calls"),
    ),
    "finish_reason_length": ByKind(
        usage=Usage(input_tokens=13, output_tokens=50, reasoning_tokens=50),
        end=Done("max_tokens", "length"),
    ),
    "groq_error_event_mid_stream": ByKind(
        thinking=Long(
            412,
            "42abcfd444c13a252daf3a905d1959fe1881cf8631c56e434cf9dd844576524f",
            "We need to call the tool with invalid pa",
            'd call with name: "test". Let\'s do that.',
        ),
        end=StreamError(
            kind="bad_request",
            message="Tool call validation failed: tool call validation failed: parameters for"
            " tool get_something_by_name did not match schema: errors: [missing properties:"
            " 'name', additionalProperties 'invalid_param' not allowed]",
            status=400,
            code="tool_use_failed",
        ),
    ),
    "groq_reasoning_tool_call": ByKind(
        thinking='We need to call the function with correct parameter "name". Provide a name,'
        ' e.g., "example".',
        tool_calls=(
            Call(
                "fc_bfb39741-3748-4def-9886-a93fc9c64a90",
                "get_something_by_name",
                {"name": "example"},
            ),
        ),
        usage=Usage(input_tokens=304, output_tokens=49, reasoning_tokens=23),
        end=Done("tool_use", "tool_calls"),
    ),
    "groq_think_tags": ByKind(
        thinking=Long(
            1977,
            "622f9f6c86d2b844301cf4d5e73cb1be262ac4300cb75d0ff7917ff2ec0125fc",
            "\nOkay, so I want to make Uruguayan alfaj",
            "turn out right, I can adjust next time.\n",
        ),
        text=Long(
            2053,
            "50677ae8a833e6d4a0ce280b15363b4a83c3f618755944737150ec16d15e8e46",
            "\n\nTo make Uruguayan alfajores, follow th",
            "Enjoy your homemade Uruguayan alfajores!",
        ),
        usage=Usage(input_tokens=21, output_tokens=988),  # only in x_groq
        end=Done("end_turn", "stop"),
    ),
    "mistral_tool_call_no_index": ByKind(
        tool_calls=(Call("gSIMJiOkT", "weather", {"location": "San Francisco"}),),
        usage=Usage(input_tokens=124, output_tokens=22),
        end=Done("tool_use", "tool_calls"),
    ),
    "openrouter_error_in_stream": ByKind(
        thinking="We need to respond to a greeting. The user",
        usage=Usage(input_tokens=43, output_tokens=10, reasoning_tokens=11),
        end=StreamError(kind="bad_request", message="Token limit reached", status=400),
    ),
    "openrouter_reasoning": ByKind(
        thinking="This is a simple arithmetic question. 2+2 equals 4.",
        text="2 + 2 = 4",
        usage=Usage(input_tokens=43, output_tokens=36, reasoning_tokens=13),
        end=Done("end_turn", "stop"),
    ),
    "parallel_tool_calls": ByKind(
        tool_calls=(
            Call("call_M26z19sncd7b4LBgzKRRbaUE", "secret_retrieval_tool", {"password": "mellon"}),
            Call(
                "call_KPXe5NX7IcKkaBUhc6dto2QV", "secret_retrieval_tool", {"password": "radiance"}
            ),
        ),
        usage=Usage(input_tokens=75, output_tokens=53),
        end=Done("tool_use", "tool_calls"),
    ),
    "parallel_tool_calls_two_functions": ByKind(
        tool_calls=(
            Call("call_q2UyBRP7eXNTzAoR8lEhjc9Z", "get_country", {}),
            Call("call_b51ijcpFkDiTQG1bQzsrmtW5", "get_product_name", {}),
        ),
        usage=Usage(input_tokens=364, output_tokens=40),
        end=Done("tool_use", "tool_calls"),
    ),
    "perplexity_crlf": ByKind(
        text="The largest country in the world by total area is Russia, with a total area of"
        " approximately 17,098,242 square kilometers (6,601,665 square miles) [2][4].",
        usage=Usage(input_tokens=12, output_tokens=43),  # the last of the per-chunk totals
        end=Done("end_turn", "stop"),
    ),
    "refusal": ByKind(
        refusal="I'm very sorry, but I can't assist with that request.",
        usage=Usage(input_tokens=64, output_tokens=13),
        end=Done("refusal", "stop"),
    ),
    "refusal_async_run": ByKind(
        refusal="I'm sorry, I can\u2019t assist with that request.",
        usage=Usage(input_tokens=64, output_tokens=12),
        end=Done("refusal", "stop"),
    ),
    "text_usage_chunk": ByKind(
        text="4200 + 42 equals 4242.",
        usage=Usage(input_tokens=16, output_tokens=10),
        end=Done("end_turn", "stop"),
    ),
    "together_think_tags": ByKind(
        thinking=Long(
            1430,
            "c5cc0387998c480604041d3f9f37646f55db762de58a3e866edf1ad22e040423",
            '\nOkay, the user asked "How do I cross th',
            " but don't sound like a paranoid robot.\n",
        ),
        text=Long(
            2557,
            "5c10a5cc7ea3938c7e6a4b76e4410aa70991a6e88427e2e0df5354d174282dd6",
            "\nCrossing the street safely requires att",
            "ps every time\u2014it could save your life! \U0001f31f",
        ),
        usage=Usage(input_tokens=10, output_tokens=955),
        end=Done("end_turn", "stop"),
    ),
    "tool_call": ByKind(
        tool_calls=(Call("call_ZR5UUuTt3pf61kjwAJIYdVMj", "get_capital", {"country": "UK"}),),
        usage=Usage(input_tokens=53, output_tokens=15),
        end=Done("tool_use", "tool_calls"),
    ),
    "tool_call_index_starts_at_one": ByKind(
        text="Reading it.",
        tool_calls=(Call("toolu_sanitized", "read_file", {"path": "a.txt"}),),
        end=Done("tool_use", "tool_calls"),
    ),
    "zai_glm_reasoning_content": ByKind(
        thinking=Long(
            2173,
            "960317a214d06504c4bf8035707c11efe171d2d0137223fecc06993b7816892d",
            "\n1.  **Analyze the User's Request:** The",
            '\n\n7.  **Draft the final response:** "4".',
        ),
        text="4",
        usage=Usage(input_tokens=13, output_tokens=564, reasoning_tokens=561),
        end=Done("end_turn", "stop"),
    ),
}


class TestRecordedCases(RecordedCases):
    provider = OPENAI_CHAT
    expected = EXPECTED

    def assert_well_formed(self, events: Sequence[ProviderEvent]) -> None:
        """Besides: the calls end together, in the order they started, after
        every delta, and the usage after them."""
        assert_well_formed(events)
        starts = [event for event in events if isinstance(event, ToolCallStart)]
        ends = [event for event in events if isinstance(event, ToolCallEnd)]
        if isinstance(events[-1], Done):
            assert [(e.index, e.call_id) for e in ends] == [(s.index, s.call_id) for s in starts]
        tail_kinds = (ToolCallEnd, Usage, Done, StreamError)
        first_tail = next(i for i, event in enumerate(events) if isinstance(event, tail_kinds))
        tail = events[first_tail:]
        assert all(isinstance(event, tail_kinds) for event in tail)
        assert tail == sorted(
            tail, key=lambda event: [isinstance(event, k) for k in tail_kinds].index(True)
        )
