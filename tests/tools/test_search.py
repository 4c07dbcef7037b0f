from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path

import pytest

from parleyd.tools.base import ToolContext, ToolError
from parleyd.tools.paths import Workspace
from parleyd.tools.search import (
    MAX_SEARCHED_FILE_BYTES,
    SearchText,
    SearchTextArguments,
    _search,
)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("import os\n\ndef main():\n    return os.getcwd()\n")
    (root / "src" / "util.js").write_text("// TODO: os\nexport const x = 1;\r\n")
    (root / "README.md").write_text("Call main() to start.\n")
    return root


async def search(root: Path, **arguments: object) -> str:
    result = await SearchText().run(arguments, ToolContext(cwd=root))
    return result.output


async def test_literal_search_lists_relpath_line_text(ws: Path) -> None:
    assert (await search(ws, pattern="main()")).splitlines() == [
        "README.md:1: Call main() to start.",
        "src/app.py:3: def main():",
    ]


async def test_literal_pattern_is_not_a_regex(ws: Path) -> None:
    assert (await search(ws, pattern="os.")).splitlines() == ["src/app.py:4: return os.getcwd()"]


async def test_regex_search_and_anchors_on_crlf_lines(ws: Path) -> None:
    out = await search(ws, pattern=r"^(import|export)\b.*[;s]$", regex=True)
    assert out.splitlines() == [
        "src/app.py:1: import os",
        "src/util.js:2: export const x = 1;",
    ]


async def test_case_insensitive(ws: Path) -> None:
    assert await search(ws, pattern="CALL", case_sensitive=False) == (
        "README.md:1: Call main() to start."
    )
    assert (await search(ws, pattern="CALL")).startswith("No matches for 'CALL' in .")


async def test_glob_on_names_and_on_paths(ws: Path) -> None:
    assert (await search(ws, pattern="os", glob="*.js")) == "src/util.js:1: // TODO: os"
    assert (await search(ws, pattern="main", glob="src/*")).splitlines() == [
        "src/app.py:3: def main():"
    ]


async def test_path_restricts_to_a_directory_or_a_file(ws: Path) -> None:
    assert (await search(ws, pattern="main", path="src")) == "src/app.py:3: def main():"
    assert (await search(ws, pattern="main", path="README.md")).startswith("README.md:1:")


async def test_results_are_capped_with_a_notice(ws: Path) -> None:
    (ws / "many.txt").write_text("hit\n" * 50)
    lines = (await search(ws, pattern="hit", max_results=10)).splitlines()
    assert lines[:10] == [f"many.txt:{n}: hit" for n in range(1, 11)]
    assert lines[10].startswith("[stopped at 10 matches")
    assert len(lines) == 11


async def test_skips_git_tooling_binary_large_and_symlinked_files(ws: Path) -> None:
    for skipped in (".git", "node_modules/pkg", ".venv/lib"):
        (ws / skipped).mkdir(parents=True)
        (ws / skipped / "f.txt").write_text("needle\n")
    (ws / "blob.bin").write_bytes(b"needle\0\1\2")
    (ws / "huge.txt").write_bytes(b"needle\n" + b"x" * MAX_SEARCHED_FILE_BYTES)
    outside = ws.parent / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("needle\n")
    (ws / "out-link").symlink_to(outside)
    (ws / "file-link.txt").symlink_to(outside / "f.txt")
    (ws / "kept.txt").write_text("needle\n")
    result = await SearchText().run({"pattern": "needle"}, ToolContext(cwd=ws))
    assert result.output == "kept.txt:1: needle"
    assert result.locations == (ws / "kept.txt",)


async def test_long_matching_lines_are_shortened(ws: Path) -> None:
    (ws / "min.js").write_text("needle" + "x" * 5000 + "\n")
    out = await search(ws, pattern="needle")
    assert len(out) < 400


async def test_errors(ws: Path) -> None:
    with pytest.raises(ToolError, match=r"invalid regular expression '\(unclosed'"):
        await search(ws, pattern="(unclosed", regex=True)
    with pytest.raises(ToolError, match=r"\$\.pattern"):
        await search(ws, pattern="")
    with pytest.raises(ToolError, match="outside the workspace"):
        await search(ws, pattern="x", path="..")
    with pytest.raises(ToolError, match="nope does not exist"):
        await search(ws, pattern="x", path="nope")


async def test_cancellation_returns_at_once(ws: Path) -> None:
    for n in range(2000):
        (ws / f"f{n}.txt").write_text("filler line\n" * 200)
    task = asyncio.create_task(search(ws, pattern=r"(a|b)*c\d", regex=True))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)


def test_worker_stops_between_files_once_told(ws: Path) -> None:
    stop = threading.Event()
    stop.set()
    args = SearchTextArguments(pattern="main")
    found = _search(Workspace.at(ws), ws, re.compile("main"), args, stop)
    assert found.lines == []
