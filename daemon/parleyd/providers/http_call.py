"""One streamed model call over HTTP, whatever the provider's wire format.

Every provider POSTs a JSON body and reads a stream back; what differs is the
endpoint, the headers, how the stream is parsed and how an error body reads.
Everything else is here, once, in `HttpProvider`: the client, the request, the
answer checked before it is parsed, and every failure, from an unreachable
server to a refused key or a stall, ended as one `StreamError` that names what
the user would fix (the provider's own environment variables).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypedDict, TypeVar

import httpx
import msgspec

from parleyd.providers.events import ErrorKind, ProviderEvent, StreamError
from parleyd.providers.transport import ANSWER_TIMEOUT, model_client

_BODY_EXCERPT = 500
_UNREACHABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
)
_CONTEXT_OVERFLOW = re.compile(
    r"context[ _-]?(length|window)|maximum context|prompt is too long|too many tokens"
    r"|input token count|exceed_context_size|exceed context limit",
    re.I,
)


@dataclass(frozen=True)
class Endpoint:
    """Where a provider's calls go, and what its user sets when they fail:
    `key_variable` is named when the key is refused, `url_variable` when the
    server cannot be reached or does not know the model. `headers` are the
    API's own (its key's among them); `media_types` are the answers that are a
    stream, the first the one asked for."""

    url: str
    key_variable: str
    url_variable: str
    headers: Mapping[str, str] = field(default_factory=dict)
    media_types: tuple[str, ...] = ("text/event-stream",)

    @cached_property
    def request_headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Accept": self.media_types[0], **self.headers}


def key_header(name: str, api_key: str | None, *, prefix: str = "") -> dict[str, str]:
    """The header that carries the API key: none without a key (a local server,
    or a proxy that adds its own)."""
    return {name: prefix + api_key} if api_key else {}


class WireError(msgspec.Struct):
    """What a provider said went wrong, in the words all of them use."""

    message: str | None = None
    code: str | None = None
    type: str | None = None
    status: int | None = None
    # Seconds to wait, where the body says it rather than a header (Gemini's RetryInfo).
    retry_after: float | None = None


ErrorReader = Callable[[bytes], WireError]
StreamParser = Callable[[AsyncIterator[bytes]], AsyncIterator[ProviderEvent]]
_Decoded = TypeVar("_Decoded")


def decoded(decoder: msgspec.json.Decoder[_Decoded], data: bytes | str) -> _Decoded | None:
    """`data` as `decoder` reads it, or None: an error body can be anything (a
    proxy's HTML page, nothing at all), and then says nothing Parley can use."""
    try:
        return decoder.decode(data)
    except msgspec.DecodeError:
        return None


class Connection(TypedDict, total=False):
    """The keywords every provider takes for its connection, as HttpProvider does."""

    client: httpx.AsyncClient | None
    idle_timeout: float
    connect_timeout: float
    load_timeout: float | None


class HttpProvider:
    """A model API that takes a JSON POST and answers with a stream. What every
    one shares is here: the client (the daemon's shared pool, or one of its own
    that closes with it), the timeouts, and the call. A provider says what is
    its own: where the call goes (`endpoint`), how an error body and the stream
    read (`read_error`, `parse`), and, in `stream`, the request body."""

    name: str

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        read_error: ErrorReader,
        parse: StreamParser,
        client: httpx.AsyncClient | None = None,
        idle_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        load_timeout: float | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._read_error = read_error
        self._parse = parse
        # httpx's read timeout bounds each socket read, so it is exactly an idle
        # timeout. A server that loads the model before it answers (Ollama) may
        # take `load_timeout` to begin instead, where that is longer (through
        # our transport; httpx's own, for a proxy, knows only `read`).
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=idle_timeout, write=idle_timeout, pool=connect_timeout
        )
        self._timeouts: dict[str, float | None] = self._timeout.as_dict()
        if load_timeout is not None:
            self._timeouts[ANSWER_TIMEOUT] = max(load_timeout, idle_timeout)
        self._owns_client = client is None
        self._client = client or model_client()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _call(
        self, body: dict[str, Any], model: str, endpoint: Endpoint | None = None
    ) -> AsyncIterator[ProviderEvent]:
        """POST `body` to the provider's endpoint (or to `endpoint`, where each
        model has its own) and yield the parsed stream; any failure is its last event."""
        endpoint = endpoint or self._endpoint
        answered = False
        try:
            async with self._client.stream(
                "POST",
                endpoint.url,
                content=msgspec.json.encode(body),
                headers=endpoint.request_headers,
                extensions={"timeout": self._timeouts},
            ) as response:
                answered = True
                failure = await _refusal(endpoint, response, model, self._read_error)
                if failure is not None:
                    yield failure
                    return
                async for event in self._parse(response.aiter_bytes()):
                    yield event
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            yield self._transport_error(endpoint, exc, answered)

    def _transport_error(
        self, endpoint: Endpoint, exc: httpx.HTTPError | httpx.InvalidURL, answered: bool
    ) -> StreamError:
        if isinstance(exc, httpx.ReadTimeout):
            loading = None if answered else self._timeouts.get(ANSWER_TIMEOUT)
            if loading is None:
                silence = f"sent nothing for {self._timeout.read or 0:g} s"
            else:
                silence = (
                    f"did not answer within {loading:g} s, the longest a model may take "
                    "to load (model_load_timeout)"
                )
            return StreamError(kind="timeout", message=f"{endpoint.url} {silence}", retryable=True)
        return _transport_error(endpoint, exc)


async def _refusal(
    endpoint: Endpoint, response: httpx.Response, model: str, read_error: ErrorReader
) -> StreamError | None:
    """Why this answer is not a stream to parse, or None when it is one."""
    if not response.is_success:
        return http_error(
            endpoint,
            response.status_code,
            headers=response.headers,
            body=await response.aread(),
            model=model,
            read_error=read_error,
        )
    content_type = response.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() in endpoint.media_types:
        return None
    excerpt = _excerpt(await response.aread())
    return StreamError(
        kind="protocol",
        message=f"{endpoint.url} answered {content_type or 'without a content type'}, "
        f"not a stream: {excerpt}",
        status=response.status_code,
    )


def _transport_error(endpoint: Endpoint, exc: httpx.HTTPError | httpx.InvalidURL) -> StreamError:
    if isinstance(exc, _UNREACHABLE):
        # Refused, unresolvable, failed TLS or not a URL: nearly always the configuration.
        return StreamError(
            kind="network",
            message=f"cannot connect to {endpoint.url} ({exc or type(exc).__name__})"
            f"; check {endpoint.url_variable}",
            retryable=isinstance(exc, httpx.ConnectTimeout),
        )
    return StreamError(
        kind="network",
        message=f"connection to {endpoint.url} failed: {exc or type(exc).__name__}",
        retryable=True,
    )


def classify(
    status: int | None, code: str | None, error_type: str | None, message: str
) -> tuple[ErrorKind, bool]:
    """(kind, retryable) for an error a server described, over HTTP or inside a stream."""
    words = f"{code or ''} {error_type or ''}"
    if _CONTEXT_OVERFLOW.search(f"{words} {message}"):
        return "context_overflow", False
    if status in (401, 403) or code == "invalid_api_key" or "authentication" in words:
        return "auth", False
    if code == "insufficient_quota":
        return "rate_limit", False  # an empty account: waiting will not refill it
    if status == 429 or "rate_limit" in words or "RESOURCE_EXHAUSTED" in words:
        return "rate_limit", True
    # Anthropic's overloaded_error (HTTP 529, or an event after a 200) passes.
    if (status or 0) >= 500 or error_type in ("server_error", "overloaded_error", "api_error"):
        return "server", True
    if status in (408, 409):
        return "server", True  # a timeout or a conflict on the server's side: again later
    if status is not None and 400 <= status < 500:
        return "bad_request", False
    return "fatal", False


def stream_error(error: WireError) -> StreamError:
    """The StreamError for an error sent inside a 200 stream."""
    message = error.message or "the server reported an error without a message"
    kind, retryable = classify(error.status, error.code, error.type, message)
    return StreamError(
        kind=kind, message=message, retryable=retryable, status=error.status, code=error.code
    )


def http_error(
    endpoint: Endpoint,
    status: int,
    *,
    headers: httpx.Headers,
    body: bytes,
    model: str,
    read_error: ErrorReader,
) -> StreamError:
    """The StreamError for a non-2xx answer, before any stream began."""
    error = read_error(body)
    detail = error.message or _excerpt(body)
    kind, retryable = classify(status, error.code, error.type, detail)
    url = endpoint.url
    if kind == "auth":
        fix = f"Check {endpoint.key_variable}."
        message = f"{url} rejected the API key (HTTP {status}): {detail}. {fix}"
    elif status == 404:
        message = (
            f"{url} answered 404 for model {model!r}: {detail}."
            f" Check the model name and {endpoint.url_variable}."
        )
    else:
        message = f"{url} answered HTTP {status}: {detail}"
    return StreamError(
        kind=kind,
        message=message,
        retryable=retryable,
        retry_after=_wait(headers, error) if retryable else None,
        status=status,
        code=error.code,
    )


def _wait(headers: httpx.Headers, error: WireError) -> float | None:
    header = retry_after(headers)
    return header if header is not None else error.retry_after


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or a date)."""
    if (millis := _float(headers.get("retry-after-ms"))) is not None:
        return max(millis / 1000, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    if (seconds := _float(value)) is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text[:_BODY_EXCERPT] or "(empty body)"
