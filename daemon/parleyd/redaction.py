"""Keep credentials out of everything Parley writes: frames to the client, session
logs, log lines.

A provider's error body may echo the request's `Authorization` header, a tool may
print a token, an exception may carry a header. What is written passes through
one process-wide redactor, which replaces the API keys the daemon read (registered
at startup) and anything shaped like a credential after `Bearer`, `Authorization:`
or `api-key:` with `[REDACTED]`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import AnyStr, Generic

import msgspec

# The environment variables providers read their API key from. A new provider adds
# its own; none of them reaches a command the model runs (tools/environment.py).
PROVIDER_KEY_VARIABLES = frozenset(
    {
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "OLLAMA_API_KEY",
        "MISTRAL_API_KEY",
        "GROQ_API_KEY",
        "DEEPSEEK_API_KEY",
        "OPENROUTER_API_KEY",
    }
)

REDACTED = "[REDACTED]"
# Shorter values ("none", "ollama": what local servers are given) are no secret, and
# replacing them everywhere would garble ordinary text.
MIN_SECRET_CHARS = 8

# RFC 6750's b64token, at least 16 characters, with at least one character that is
# not a letter (the lookahead), so that "Bearer responsibilities" stays prose.
_CREDENTIAL = r"(?=[A-Za-z.]*[0-9_~+/-])[A-Za-z0-9._~+/-]{16,}=*"
# What a credential stands after (kept in the output): a header or field name and
# its value's scheme, or a scheme alone. The header may stand in JSON, itself
# inside a JSON string: `\"Authorization\": \"Bearer ...`. Lower-case, as the
# trigger sees it; the pattern ignores case.
_HEADER_NAMES = r"authorization|api[-_]?key"
_QUOTE = r"""(?:\\?["'])?"""
_LABEL = rf"(?:{_HEADER_NAMES}){_QUOTE}\s*[:=]\s*{_QUOTE}(?:(?:bearer|basic|token)\s+)?|bearer\s+"
# Every word `_LABEL` can start with, lower-case.
_LABEL_WORDS = ("authorization", "apikey", "api-key", "api_key", "bearer")


@dataclass(frozen=True)
class _Matcher(Generic[AnyStr]):
    """The redaction of one kind of data, text or bytes."""

    pattern: re.Pattern[AnyStr]
    # One of these is in the lower-cased data wherever `pattern` might match the
    # data. Nearly nothing written holds a credential, and substring searches
    # cost a fraction of a regular expression's (this runs on every frame).
    triggers: tuple[AnyStr, ...]
    replacement: AnyStr

    def may_match(self, data: AnyStr) -> bool:
        lowered = data.lower()
        return any(trigger in lowered for trigger in self.triggers)

    def redact(self, data: AnyStr) -> AnyStr:
        return self.pattern.sub(self.replacement, data) if self.may_match(data) else data


class Redactor:
    """Replaces registered secret values and labelled credentials, in text and in
    bytes. Registering recompiles; redacting only matches."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._compile()

    def register(self, secret: str | None) -> None:
        if secret is None or len(secret) < MIN_SECRET_CHARS or secret in self._secrets:
            return
        self._secrets.add(secret)
        self._compile()

    def redact_text(self, text: str) -> str:
        return self._text.redact(text)

    def redact_bytes(self, data: bytes) -> bytes:
        return self._bytes.redact(data)

    def may_hold_secrets(self, data: bytes) -> bool:
        return self._bytes.may_match(data)

    def _compile(self) -> None:
        # Frames and log lines are JSON: a secret with a quote or a backslash in it
        # stands there escaped.
        spellings = self._secrets | {msgspec.json.encode(s).decode()[1:-1] for s in self._secrets}
        # Longest first: a secret that contains another is replaced whole.
        ordered = sorted(spellings, key=len, reverse=True)
        pattern = "|".join([*map(re.escape, ordered), f"(?P<label>(?i:{_LABEL})){_CREDENTIAL}"])
        triggers = (*(s.lower() for s in ordered), *_LABEL_WORDS)
        replacement = rf"\g<label>{REDACTED}"
        self._text = _Matcher(re.compile(pattern), triggers, replacement)
        self._bytes = _Matcher(
            re.compile(pattern.encode()),
            tuple(t.encode() for t in triggers),
            replacement.encode(),
        )


_redactor = Redactor()


def register_secret(secret: str | None) -> None:
    """From now on, `secret` is replaced wherever Parley writes it."""
    _redactor.register(secret)


def register_provider_keys(environ: Mapping[str, str]) -> None:
    """Register the API keys the environment holds for any provider."""
    for name in PROVIDER_KEY_VARIABLES:
        register_secret(environ.get(name))


def redact_text(text: str) -> str:
    return _redactor.redact_text(text)


def redact_bytes(data: bytes) -> bytes:
    return _redactor.redact_bytes(data)


def may_hold_secrets(data: bytes) -> bool:
    """False when `redact_bytes` would surely change nothing: one cheap scan of
    many frames at once, before any of them is redacted."""
    return _redactor.may_hold_secrets(data)


class RedactingFormatter(logging.Formatter):
    """Formats a record as `inner` does, then redacts the whole line: the message,
    its arguments and any traceback alike."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self._inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(self._inner.format(record))
