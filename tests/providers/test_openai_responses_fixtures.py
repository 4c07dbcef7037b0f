"""What every Responses stream in the fixtures, recorded or written, gives (see
`provider_cases`). The thinking of a summary is its parts as the finished
reasoning item lists them, one blank line apart."""

from __future__ import annotations

from parleyd.providers.events import Done, StreamError, Usage
from tests.support.provider_cases import URL, ByKind, Call, Long, Outcome, RecordedCases
from tests.support.providers_under_test import OPENAI_RESPONSES

QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more"
    " information on this error, read the docs:"
    " https://platform.openai.com/docs/guides/error-codes/api-errors."
)
RETRY_LATER = (
    "An error occurred while processing your request. You can retry your request, or contact"
    " us through our help center at help.openai.com if the error persists."
)

EXPECTED: dict[str, Outcome] = {
    "cut_before_completed": ByKind(  # written
        text="The answer is",
        end=StreamError(kind="protocol", message="stream ended before the model finished"),
    ),
    "deepseek_reasoning_text": ByKind(
        thinking="We need answer capital of France.",
        text="The capital of France is Paris.",
        usage=Usage(input_tokens=90, output_tokens=15, reasoning_tokens=7),
        end=Done("end_turn", "completed"),
    ),
    "error_event_server_error": ByKind(  # written
        text="Let me think",
        end=StreamError(
            kind="server",
            message="The server had an error processing your request. Sorry about that! You can"
            " retry your request, or contact us through our help center at help.openai.com if you"
            " keep seeing this error.",
            retryable=True,
            code="server_error",
        ),
    ),
    "error_then_failed": ByKind(
        # The error event ends the stream: the response.failed after it says it again.
        end=StreamError(kind="rate_limit", message=QUOTA, code="insufficient_quota"),
    ),
    "failed_server_error": ByKind(  # written
        end=StreamError(kind="server", message=RETRY_LATER, retryable=True, code="server_error"),
    ),
    "function_call": ByKind(
        tool_calls=(Call("call_sVidsfFJ6zlzRpelrPkTPlpd", "multiply", {"a": 1231, "b": 2331}),),
        usage=Usage(input_tokens=58, output_tokens=23),
        end=Done("tool_use", "completed"),
    ),
    "incomplete_content_filter": ByKind(  # written
        text="Here is how it",
        usage=Usage(input_tokens=40, output_tokens=4),
        end=Done("refusal", "content_filter"),
    ),
    "incomplete_max_output_tokens": ByKind(
        text="Sure! Here is a list of all 50 U.S. states:\n\n1. Alabama\n2. Alaska\n3. Arizona"
        "\n4. Arkansas\n5. California\n6. Colorado\n7. Connecticut\n8. Delaware\n9. Florida",
        usage=Usage(input_tokens=14, output_tokens=50),
        end=Done("max_tokens", "max_output_tokens"),
    ),
    "openrouter_reasoning_text_comments": ByKind(
        thinking='The user asks: "What is 2+2?" They expect a straightforward answer: 4.'
        " Just answer 4.",
        text="4",
        usage=Usage(input_tokens=78, output_tokens=37, reasoning_tokens=22),
        end=Done("end_turn", "completed"),
    ),
    "parallel_function_calls": ByKind(
        tool_calls=(
            Call("call_sKC7OABqf2A2PTLCm0CLeRWV", "secret_retrieval_tool", {"password": "mellon"}),
            Call(
                "call_OdR3s3xop0vtgkDyWRMLafuH", "secret_retrieval_tool", {"password": "radiance"}
            ),
        ),
        usage=Usage(input_tokens=36, output_tokens=54),
        end=Done("tool_use", "completed"),
    ),
    "parallel_function_calls_second_run": ByKind(
        tool_calls=(
            Call("call_tVwplip8EyrgMsD2ZarNBIFJ", "secret_retrieval_tool", {"password": "mellon"}),
            Call(
                "call_MHKI6t2Q3p5qwBAm21ysBMIc", "secret_retrieval_tool", {"password": "radiance"}
            ),
        ),
        usage=Usage(input_tokens=36, output_tokens=54),
        end=Done("tool_use", "completed"),
    ),
    "rate_limited_retry_after": ByKind(  # written
        end=StreamError(
            kind="rate_limit",
            message=f"{URL} answered HTTP 429: Rate limit reached for gpt-5-mini in organization"
            " org-written on tokens per min (TPM): Limit 200000, Used 199000, Requested 2400."
            " Please try again in 3s. Visit https://platform.openai.com/account/rate-limits to"
            " learn more.",
            retryable=True,
            retry_after=3.0,
            status=429,
            code="rate_limit_exceeded",
        ),
    ),
    "reasoning_summary": ByKind(
        thinking=Long(
            1403,
            "2aaaaf121a1dea54f57d5e6508234597081a90087bc2e796b2762fa09e1b35ec",
            "**Exploring prime numbers**\n\nI need to f",
            'n\u2019t, so I\u2019m finalizing my answer as "3."',
        ),
        text="3",
        usage=Usage(input_tokens=32, output_tokens=839, reasoning_tokens=832),
        end=Done("end_turn", "completed"),
    ),
    "reasoning_summary_encrypted_function_call": ByKind(  # written
        thinking="**Finding the project name**\n\nThe user wants the project's name; the README"
        " should say it.\n\n**Reading the README**\n\nI'll read README.md before answering.",
        payloads=(
            "gAAAAABwritten-encrypted-reasoning-payload-0123456789-abcdefghijklmnopqrstuvwxyz"
            "_ABCDEFGHIJKLMNOPQRSTUVWXYZ==",
        ),
        tool_calls=(Call("call_written_read_readme", "read_file", {"path": "README.md"}),),
        usage=Usage(
            input_tokens=1830, output_tokens=212, cached_input_tokens=1536, reasoning_tokens=192
        ),
        end=Done("tool_use", "completed"),
    ),
    "reasoning_text_and_function_call": ByKind(
        payloads=(
            Long(
                1080,
                "df94d460fda0c3301904b88ae6eb5a2ee630c243450918dd3d47c6c677544812",
                "gAAAAABqaR3-pGgSyJcPT3y2_26v61vCZmE9M2P6",
                "n0TlCVC7IUPEPgeI-QScqnYrFieJls_UcqGK8PU=",
            ),
        ),
        text="I\u2019ll check the capital lookup tool for \u201cPotatoLand.\u201d",
        tool_calls=(
            Call("call_LabG58Uhrq9kZvR52BYKjToD", "get_capital", {"country": "PotatoLand"}),
        ),
        usage=Usage(input_tokens=63, output_tokens=69, reasoning_tokens=26),
        end=Done("tool_use", "completed"),
    ),
    "refusal": ByKind(
        refusal="I'm sorry, I can't assist with that.",
        usage=Usage(input_tokens=54, output_tokens=11),
        end=Done("refusal", "completed"),
    ),
    "refusal_async_run": ByKind(
        refusal="I'm sorry, I can't assist with that.",
        usage=Usage(input_tokens=54, output_tokens=11),
        end=Done("refusal", "completed"),
    ),
    "text": ByKind(
        text="pong",
        usage=Usage(input_tokens=11, output_tokens=5),
        end=Done("end_turn", "completed"),
    ),
}


class TestRecordedCases(RecordedCases):
    provider = OPENAI_RESPONSES
    expected = EXPECTED
