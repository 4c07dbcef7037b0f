"""What every Gemini case, recorded or written, gives (see `provider_cases`).
A signature Gemini sends on its own, in an empty text part, is a thinking part
with no text: the signature of the part before it."""

from __future__ import annotations

from parleyd.providers.events import Done, StreamError, Usage
from tests.support.provider_cases import (
    URL,
    Call,
    InOrder,
    Long,
    Outcome,
    RecordedCases,
    Text,
    Thinking,
)
from tests.support.providers_under_test import GEMINI

EXPECTED: dict[str, Outcome] = {
    "cut_stream": InOrder(
        parts=(
            Thinking(
                "**Recalling the capital**\n\nThe user asks for the capital of France. That is"
                " Paris; a one-line answer will do.\n\n\n"
            ),
            Text("The capital of France"),
        ),
        end=StreamError(kind="protocol", message="stream ended before the model finished"),
    ),
    "error_400_json_body": InOrder(
        # A wrong key is a 400 whose ErrorInfo reason says API_KEY_INVALID.
        end=StreamError(
            kind="auth",
            message=f"{URL} rejected the API key (HTTP 400): API key not valid. Please pass a"
            " valid API key.. Check GEMINI_API_KEY.",
            status=400,
            code="invalid_api_key",
        ),
    ),
    "function_call": InOrder(
        parts=(Call("call_1lpeaMTxIpW1nvgP-O3vwQY_0", "get_capital", {"country": "France"}),),
        usage=Usage(input_tokens=52, output_tokens=5),
        end=Done("tool_use", "STOP"),
    ),
    "function_call_thought_signature": InOrder(
        parts=(
            Call(
                "call_QUVVadTSNJ6_qtsPvN7J8Q0_0",
                "get_country",
                {},
                Long(
                    1408,
                    "5d9ba8d754fc1f7dfcc0c08f3e3f89c6f9f3e7c6dba55d7c387cc5d367ea67ce",
                    "EpwICpkIAXLI2nxlU6gsWZaZHRYkX1orzuM8vSUF",
                    "oxjaTjY1V7mjb2D/7NoL5owonoBDAXOk15QuFyU=",
                ),
            ),
        ),
        # candidatesTokenCount leaves the 202 thought tokens out; output counts them.
        usage=Usage(input_tokens=29, output_tokens=10 + 202, reasoning_tokens=202),
        end=Done("tool_use", "STOP"),
    ),
    "max_tokens": InOrder(
        parts=(Text("Here are all 50 U.S."),),
        usage=Usage(input_tokens=9, output_tokens=10 + 38, reasoning_tokens=38),
        end=Done("max_tokens", "MAX_TOKENS"),
    ),
    "parallel_function_calls": InOrder(
        # Only the first of the two calls is signed.
        parts=(
            Call(
                "call_G5nyaJuGE-yrqtsPmJHUoAs_0",
                "secret_retrieval_tool",
                {"password": "mellon"},
                Long(
                    484,
                    "66acbc6567460b423ee50c977ec9ff31fdd1df4adbf9c835afd90a3d3c0b5ee7",
                    "CikB0e2Kbw5tJ9dwYB9m1I9W28H1Pvbhg7iFnlQJ",
                    "xk0WD6e32VVE/ocsvy+BTeSxsfFo6v4VRanbbnKg",
                ),
            ),
            Call(
                "call_G5nyaJuGE-yrqtsPmJHUoAs_1", "secret_retrieval_tool", {"password": "radiance"}
            ),
        ),
        usage=Usage(input_tokens=70, output_tokens=40 + 61, reasoning_tokens=61),
        end=Done("tool_use", "STOP"),
    ),
    "parallel_function_calls_gemini_2_0": InOrder(
        parts=(
            Call("call_h99baZTLOoSShMIPgYaAgQw_0", "get_current_temperature", {"city": "Paris"}),
            Call("call_h99baZTLOoSShMIPgYaAgQw_1", "get_current_temperature", {"city": "London"}),
        ),
        usage=Usage(input_tokens=37, output_tokens=14),
        end=Done("tool_use", "STOP"),
    ),
    "rate_limit_429_retry_info": InOrder(
        end=StreamError(
            kind="rate_limit",
            message=f"{URL} answered HTTP 429: You exceeded your current quota, please check your"
            " plan and billing details. For more information on this error, head to:"
            " https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric:"
            " generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10,"
            " model: gemini-2.5-flash\nPlease retry in 17.25s.",
            retryable=True,
            # Gemini sends no Retry-After header: the delay is the body's RetryInfo.
            retry_after=17.0,
            status=429,
            code="RESOURCE_EXHAUSTED",
        ),
    ),
    "text": InOrder(
        parts=(Text("The capital of France is Paris.\n"),),
        # The last chunk's counts, not the first two's (15 prompt tokens).
        usage=Usage(input_tokens=13, output_tokens=8),
        end=Done("end_turn", "STOP"),
    ),
    "thought_parts": InOrder(
        parts=(
            Thinking(
                Long(
                    1257,
                    "c014fb63093c6af41fe0a822752809b41932e6fac950e6e5ef37bcef34afd881",
                    "**Analyzing Prime Substrings**\n\nOkay, so",
                    "tate with certainty the final answer.\n\n\n",
                )
            ),
            Text("3"),
        ),
        usage=Usage(input_tokens=30, output_tokens=1947, reasoning_tokens=1947),
        end=Done("end_turn", "STOP"),
    ),
    "thought_parts_with_signature": InOrder(
        # The signature rides on the first text part, and goes back on it.
        parts=(
            Thinking(
                Long(
                    1575,
                    "1bf501f690cde7d3a87b3ba1a0dd9061cccb49abc397f46fbfec08abfa507dd6",
                    "**Clarifying User Goals**\n\nI'm currently",
                    " specific circumstances or locations.\n\n\n",
                )
            ),
            Text(
                "This is a great question! Safely crossing the street is all about being aware"
                " and predictable. Here is a step-by-step"
            ),
            Thinking(
                signature=Long(
                    6152,
                    "e99c40ab9d8666d57555075f273dd5a101220c44e4a76d338564d2799d934766",
                    "CiIB0e2Kb6Syj1a961EfbWv4W5C8RgAA/hGleV9V",
                    "FCnk9JlNjRyjsqeWrw7oTiOIFZ1EgMKlqm/dH8k=",
                )
            ),
            Text(
                Long(
                    1821,
                    "ee6fdac017978076855408c34e1bb2559261c67f051da504d1d128c6055dfc7d",
                    " guide that is widely taught for safety:",
                    "lways assume a driver might not see you.",
                )
            ),
        ),
        usage=Usage(input_tokens=34, output_tokens=469 + 787, reasoning_tokens=787),
        end=Done("end_turn", "STOP"),
    ),
    "vertex_streamed_function_call_args": InOrder(
        # A call without arguments, signed, then three whose arguments stream
        # as values at JSON paths, each closed by an empty functionCall.
        parts=(
            Thinking(
                Long(
                    320,
                    "b543f381617bf2df623a1b48abe9e40a7298c520ce985cbe38ad2a1f00bff7de",
                    "**Processing User Requests**\n\nI've start",
                    'B" and "C" in parallel as instructed.\n\n\n',
                )
            ),
            Call(
                "call__vr4aYiWEJnYodAPkujX0QM_0",
                "read_theme",
                {},
                Long(
                    1060,
                    "240b3953bff3f13a408daa4f1390911c7b180420d61249c248c072204608484b",
                    "AY89a18a8/Loc2wl5oft+F3qHoU4VPX0L9ljRtKx",
                    "BTo/nQYepQ/8mmxdyc8ZCmdytGJB49ZeNTtCJA==",
                ),
            ),
            Call("call__vr4aYiWEJnYodAPkujX0QM_1", "read_screen", {"id": "A"}),
            Call("call__vr4aYiWEJnYodAPkujX0QM_2", "read_screen", {"id": "B"}),
            Call("call__vr4aYiWEJnYodAPkujX0QM_3", "read_screen", {"id": "C"}),
        ),
        usage=Usage(input_tokens=249, output_tokens=58 + 183, reasoning_tokens=183),
        end=Done("tool_use", "STOP"),
    ),
}


class TestRecordedCases(RecordedCases):
    provider = GEMINI
    expected = EXPECTED
