from __future__ import annotations

import logging
import sys

import msgspec
import pytest

from parleyd.config import load_settings
from parleyd.redaction import REDACTED, RedactingFormatter, Redactor, redact_bytes, redact_text

KEY = "sk-proj-unit-test-0123456789abcdef"


@pytest.fixture
def redactor() -> Redactor:
    redactor = Redactor()
    redactor.register(KEY)
    return redactor


def test_a_registered_value_is_replaced_in_text_and_bytes(redactor: Redactor) -> None:
    assert redactor.redact_text(f"key={KEY}; again {KEY}") == f"key={REDACTED}; again {REDACTED}"
    frame = msgspec.json.encode({"message": f"echo: {KEY}"})
    assert redactor.redact_bytes(frame) == msgspec.json.encode({"message": f"echo: {REDACTED}"})


def test_a_value_is_found_as_json_escapes_it() -> None:
    redactor = Redactor()
    secret = 'pa"ss\\word-0123456789'
    redactor.register(secret)
    frame = msgspec.json.encode({"text": f"[{secret}]"})
    assert msgspec.json.decode(redactor.redact_bytes(frame)) == {"text": f"[{REDACTED}]"}


def test_a_secret_containing_another_is_replaced_whole() -> None:
    redactor = Redactor()
    redactor.register("abcdefgh-short")
    redactor.register("abcdefgh-short-and-longer")
    assert redactor.redact_text("x abcdefgh-short-and-longer y") == f"x {REDACTED} y"


def test_short_values_are_not_secrets() -> None:
    redactor = Redactor()
    redactor.register("ollama")
    redactor.register("")
    redactor.register(None)
    assert redactor.redact_text("ollama serves the model") == "ollama serves the model"


@pytest.mark.parametrize(
    ("written", "redacted"),
    [
        ("Authorization: Bearer abc.DEF-1234567890xyz", f"Authorization: Bearer {REDACTED}"),
        ("authorization: bearer abcdefghijklmnop_1", f"authorization: bearer {REDACTED}"),
        ('{"Authorization": "Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl"}', None),
        ('"headers": "{\\"authorization\\": \\"sk-ant-0123456789abcdef\\"}"', None),
        ("x-api-key: sk-ant-api03-0123456789abcdef", f"x-api-key: {REDACTED}"),
        ("api_key=ghp_0123456789abcdefABCDEF", f"api_key={REDACTED}"),
        ('"apiKey": "AIzaSyA-0123456789abcdefgh"', f'"apiKey": "{REDACTED}"'),
        ("Authorization: Token 0123456789abcdef0123", f"Authorization: Token {REDACTED}"),
        ("sent Bearer dGhpcyBpcyBhIHRva2Vu== twice", f"sent Bearer {REDACTED} twice"),
    ],
)
def test_labelled_credentials_are_replaced(
    redactor: Redactor, written: str, redacted: str | None
) -> None:
    result = redactor.redact_text(written)
    assert REDACTED in result
    if redacted is not None:
        assert result == redacted
    assert redactor.redact_bytes(written.encode()) == result.encode()


@pytest.mark.parametrize(
    "prose",
    [
        "The Bearer responsibilities are listed below.",
        "Use a bearer token: the server checks it.",
        "Authorization: required for admin users",
        "Read the API key documentation; the apikey field is optional.",
        "KEYBOARD_LAYOUT=dvorak and GIT_AUTHOR_NAME=Ada",
        "sk-learn is not a key",
        "",
    ],
)
def test_ordinary_text_is_left_alone(redactor: Redactor, prose: str) -> None:
    assert redactor.redact_text(prose) == prose
    assert redactor.redact_bytes(prose.encode()) == prose.encode()


def test_keys_the_configuration_reads_are_redacted_process_wide() -> None:
    read = "sk-config-test-key-9876543210"
    other = "sk-ant-config-test-key-9876543210"
    load_settings(
        {"OPENAI_API_KEY": read, "ANTHROPIC_API_KEY": other, "PARLEY_CONFIG": "/nonexistent"}
    )
    assert redact_text(f"{read} {other}") == f"{REDACTED} {REDACTED}"
    assert redact_bytes(read.encode()) == REDACTED.encode()


def test_log_lines_are_redacted_message_arguments_and_traceback() -> None:
    secret = "sk-log-test-key-0123456789abcdef"
    load_settings({"OPENAI_API_KEY": secret, "PARLEY_CONFIG": "/nonexistent"})
    formatter = RedactingFormatter(logging.Formatter("%(levelname)s %(message)s"))
    try:
        raise RuntimeError(f"header was Bearer {secret}")
    except RuntimeError:
        record = logging.LogRecord(
            "parleyd", logging.ERROR, __file__, 1, "sent %s", (secret,), sys.exc_info()
        )
    line = formatter.format(record)
    assert line.startswith(f"ERROR sent {REDACTED}\nTraceback")
    assert f"RuntimeError: header was Bearer {REDACTED}" in line
    assert secret not in line
