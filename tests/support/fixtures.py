"""The recorded provider streams in `shared/fixtures/providers`, loaded for replay.

The fixtures live beside the repository, not in it (`<repo>/../shared/...`),
in development and in CI alike; `PARLEY_FIXTURES` points elsewhere when needed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES_ENV = "PARLEY_FIXTURES"
_RELATIVE = Path("shared", "fixtures", "providers")


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


@cache
def fixtures_root() -> Path:
    """The `providers` fixture directory: `$PARLEY_FIXTURES`, or the nearest
    `shared/fixtures/providers` above this file (a checkout's sibling `shared/`)."""
    if override := os.environ.get(FIXTURES_ENV):
        root = Path(override)
        if not root.is_dir():
            raise FileNotFoundError(f"{FIXTURES_ENV}={override} is not a directory")
        return root
    here = Path(__file__).resolve()
    for ancestor in here.parents:
        if (ancestor / _RELATIVE).is_dir():
            return ancestor / _RELATIVE
    raise FileNotFoundError(
        f"no {_RELATIVE} found above {here.parent}; clone the shared fixtures beside the "
        f"repository or set {FIXTURES_ENV}"
    )


def case_names(provider: str) -> list[str]:
    """Every case of one provider, sorted: `["deepseek_reasoning_content", ...]`."""
    return sorted(
        path.name.removesuffix(".meta.json")
        for path in (fixtures_root() / provider).glob("*.meta.json")
    )


def load_case(case: str) -> FixtureCase:
    """`load_case("openai_chat/tool_call")`."""
    provider, _, name = case.partition("/")
    folder = fixtures_root() / provider
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
