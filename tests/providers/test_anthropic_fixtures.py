"""What every Anthropic Messages case, recorded or written, gives (see
`provider_cases`)."""

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
    URL,
    Call,
    InOrder,
    Long,
    Outcome,
    RecordedCases,
    Text,
    Thinking,
    assert_well_formed,
)
from tests.support.providers_under_test import ANTHROPIC

EXPECTED: dict[str, Outcome] = {
    "cache_creation_server_tool": InOrder(
        # Two code-execution rounds on the server: their blocks are skipped.
        parts=(Text("The sum of the squares of the numbers 1 through 12 is **650**."),),
        # message_delta's cumulative counts replace message_start's.
        usage=Usage(
            input_tokens=6 + 6289 + 3337,
            output_tokens=198,
            cached_input_tokens=6289,
            cache_write_tokens=3337,
        ),
        end=Done("end_turn", "end_turn"),
    ),
    "cache_read_usage": InOrder(
        parts=(Text("Hello"),),
        usage=Usage(input_tokens=3 + 1217, output_tokens=4, cached_input_tokens=1217),
        end=Done("end_turn", "end_turn"),
    ),
    "cut_before_message_stop": InOrder(
        parts=(Text("Reading it."),),  # the call never finished
        end=StreamError(
            kind="protocol", message="stream ended before the model finished (no message_stop)"
        ),
    ),
    "http_400_prompt_too_long": InOrder(
        end=StreamError(
            kind="context_overflow",
            message=f"{URL} answered HTTP 400: prompt is too long: 215433 tokens > 200000 maximum",
            status=400,
            code="invalid_request_error",
        ),
    ),
    "http_429_retry_after": InOrder(
        end=StreamError(
            kind="rate_limit",
            message=f"{URL} answered HTTP 429: This request would exceed the rate limit for your"
            " organization of 50,000 input tokens per minute. For details, refer to:"
            " https://docs.claude.com/en/api/rate-limits.",
            retryable=True,
            retry_after=17.0,
            status=429,
            code="rate_limit_error",
        ),
    ),
    "http_529_overloaded": InOrder(
        end=StreamError(
            kind="server",
            message=f"{URL} answered HTTP 529: Overloaded",
            retryable=True,
            status=529,
            code="overloaded_error",
        ),
    ),
    "max_tokens": InOrder(
        parts=(
            Text(
                Long(
                    150,
                    "62b67cf9f197fa98a86f709631b2e2f306bc6b99f4f9cdebc7ed97b2e4870bd8",
                    "Here are all 50 U.S. states in alphabeti",
                    "6. Colorado\n7. Connecticut\n8. Delaware\n9",
                )
            ),
        ),
        usage=Usage(input_tokens=15, output_tokens=50),
        end=Done("max_tokens", "max_tokens"),
    ),
    "overloaded_error_mid_stream": InOrder(
        parts=(Text("Let me look at that file."),),
        end=StreamError(
            kind="server", message="Overloaded", retryable=True, code="overloaded_error"
        ),
    ),
    "redacted_thinking": InOrder(
        parts=(
            Thinking(
                redacted=Long(
                    744,
                    "a5fcad0dab0d01897ed4a37854e87cd2c8a8dda62f9f9244faaa5292f78d1d25",
                    "EqkECkYIBxgCKkA8AZ4noDfV5VcOJe/p3JTRB6Xz",
                    "00tD/X67EWkkWuR0AhDIXXjpot45vnBd4ewJ/hgB",
                )
            ),
            Thinking(
                redacted=Long(
                    296,
                    "f2ba85446010cd8c5930879e6b5216ddbeac2a82f325157d39eb4ef5ba886027",
                    "EtgBCkYIBxgCKkDQfGkwzflEJP5asG3oQfJXcTwJ",
                    "XtHDhm9jkDZ2k/6RjRRFuab/DBV3yRYdZ1J0GAE=",
                )
            ),
            Text(
                Long(
                    359,
                    "33e0d169251b911c3efe246fc3ae7eefee5090f9a6017f540195e89ab94da4a1",
                    "I notice that you've sent what appears t",
                    "oday with a legitimate task or question?",
                )
            ),
        ),
        usage=Usage(input_tokens=92, output_tokens=189),
        end=Done("end_turn", "end_turn"),
    ),
    "text": InOrder(
        parts=(Text("Hello"),),
        usage=Usage(input_tokens=10, output_tokens=4),
        end=Done("end_turn", "end_turn"),
    ),
    "text_then_two_tool_uses": InOrder(
        parts=(
            Text("I'll retrieve the secrets for both passwords you provided."),
            Call("toolu_015cUijgET79LXjgeYQerN2h", "secret_retrieval_tool", {"password": "mellon"}),
            Call(
                "toolu_01XZTimPexA7h3EVKesnKt5T", "secret_retrieval_tool", {"password": "radiance"}
            ),
        ),
        usage=Usage(input_tokens=416, output_tokens=109),
        end=Done("tool_use", "tool_use"),
    ),
    "thinking_signature": InOrder(
        parts=(
            Thinking(
                Long(
                    289,
                    "160a2860d08bbc6587228195b81217beb5234fafd95810728bdf12f19825c1fd",
                    "The user wants two names for a pet pelic",
                    "ng\n\nLet me give two brief, catchy names:",
                ),
                signature=Long(
                    656,
                    "78bfa222ef936ef197ea3d064bbe9b3eebd7902ce763eb09d0c0336d9c536bf4",
                    "EuYDCmMIDBgCKkC05Zda4P+Cdk/LQKE+Aol4ZY3E",
                    "Yvi3oIv+LDpUImrMckjemNZmBeGcEZQ4FjZiGAE=",
                ),
            ),
            Text(
                Long(
                    89,
                    "623b895e3996c621a4e61a3c2bc408e8e032a506f91e008ee9184a01b872b3d0",
                    "1. **Pouch** - references their iconic b",
                    '\n2. **Pelé** - playful take on "pelican"',
                )
            ),
        ),
        usage=Usage(input_tokens=46, output_tokens=133),
        end=Done("end_turn", "end_turn"),
    ),
    "thinking_then_tool_use": InOrder(
        parts=(
            Thinking(
                Long(
                    180,
                    "7a4548123a7bd849189d295c3ae595cd18d0ca453ada93725824383508d0e405",
                    "The user wants me to:\n1. Use the fixed_v",
                    "ion tool to see what version it returns.",
                ),
                signature=Long(
                    524,
                    "1ca0c5e976b11f45ad36107fe0bc2e0d7b1df9fb79c24ae9a622ee1476b49bb3",
                    "EoQDCm0IDhgCKkCDzGs2kL2PgnDCZU/nM2wG2P1V",
                    "d4Pu+/EsjoneYwyxQQtUVgzhVGhhANWRjSBwUxgB",
                ),
            ),
            Call("toolu_01825dXWLSoJwCst1qTsiWdb", "fixed_version", {}),
        ),
        usage=Usage(input_tokens=598, output_tokens=92, reasoning_tokens=53),
        end=Done("tool_use", "tool_use"),
    ),
    "tool_use": InOrder(
        parts=(Call("toolu_01CzN6riCPqw4pVSuTd9Dwn7", "pelican_name_generator", {}),),
        usage=Usage(input_tokens=543, output_tokens=40),
        end=Done("tool_use", "tool_use"),
    ),
    "two_tool_uses": InOrder(
        parts=(
            Call("toolu_01LtHJmixrs9NcWQkK8hu8hj", "pelican_name_generator", {}),
            Call("toolu_01N8a4jWyf116qKTMqKKmjyt", "pelican_name_generator", {}),
        ),
        usage=Usage(input_tokens=542, output_tokens=62),
        end=Done("tool_use", "tool_use"),
    ),
    "web_search_server_tool_citations": InOrder(
        # The search call and its results are the server's; the ten text
        # blocks, five with citations, are one text.
        parts=(
            Text(
                Long(
                    650,
                    "8276daa53931f800c12bfbcf468939eafe2c07c487758624f9690edaab5ec387",
                    "Based on the search results, here's the ",
                    "m bringing periods of rain this weekend.",
                )
            ),
        ),
        usage=Usage(input_tokens=10423, output_tokens=341),
        end=Done("end_turn", "end_turn"),
    ),
}


class TestRecordedCases(RecordedCases):
    provider = ANTHROPIC
    expected = EXPECTED

    def assert_well_formed(self, events: Sequence[ProviderEvent]) -> None:
        """Besides: a call that streamed no arguments has `{}`, and ends where
        its block closed, before the next call starts; usage comes only with
        a Done."""
        assert_well_formed(events, unstreamed_arguments="{}")
        usage = [event for event in events if isinstance(event, Usage)]
        assert not usage or isinstance(events[-1], Done)
        calls = [type(event) for event in events if isinstance(event, ToolCallStart | ToolCallEnd)]
        one_at_a_time = [ToolCallStart, ToolCallEnd] * calls.count(ToolCallStart)
        if isinstance(events[-1], StreamError):
            one_at_a_time = one_at_a_time[: len(calls)]  # a cut stream may leave the last one open
        assert calls == one_at_a_time
