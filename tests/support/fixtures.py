"""Where the tests' data lives, in the repository under `tests/fixtures/`, and the
recorded provider streams of `tests/fixtures/providers`, loaded for replay."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROVIDERS = FIXTURES / "providers"
ACP = FIXTURES / "acp"


@dataclass(frozen=True)
class FixtureCase:
    """One recorded response: `body` is the exact bytes the server sent."""

    provider: str
    name: str
    body: bytes
    meta: dict[str, Any]
    request: dict[str, Any] | None

    @property
    def status(self) -> int:
        """The recorded status; chunk-fixture recordings kept none, and they were all 200s."""
        return self.meta["http"]["status"] or 200

    @property
    def content_type(self) -> str:
        """The recorded content type; chunk fixtures kept none, and they are all SSE."""
        recorded: str | None = self.meta["http"]["content_type"]
        return recorded or "text/event-stream"

    @property
    def headers(self) -> dict[str, str]:
        """Response headers a case depends on (a written 429's `retry-after`);
        the recordings kept none."""
        headers: dict[str, str] = self.meta["http"].get("headers") or {}
        return headers


def case_names(provider: str) -> list[str]:
    """Every case of one provider, sorted: `["deepseek_reasoning_content", ...]`."""
    return sorted(
        path.name.removesuffix(".meta.json") for path in (PROVIDERS / provider).glob("*.meta.json")
    )


def load_case(case: str) -> FixtureCase:
    """`load_case("openai_chat/tool_call")`."""
    provider, _, name = case.partition("/")
    folder = PROVIDERS / provider
    meta = json.loads((folder / f"{name}.meta.json").read_text(encoding="utf-8"))
    request_file = meta.get("request_file")
    request = (
        json.loads((folder / request_file).read_text(encoding="utf-8")) if request_file else None
    )
    return FixtureCase(
        provider=provider,
        name=name,
        body=(folder / meta["body_file"]).read_bytes(),
        meta=meta,
        request=request,
    )
