"""edit_file: exact spans replaced, in order, all or none; errors that say where."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from parleyd.tools.base import FileDiff, ToolContext, ToolError
from parleyd.tools.edit import SHOWN_MATCHES, EditFile

SOURCE = "def greet(name):\n    print('hi', name)\n\n\ndef main():\n    greet('you')\n"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "app.py").write_text(SOURCE)
    return root


async def test_one_unique_span_is_replaced_and_the_diff_reported(ws: Path) -> None:
    result = await EditFile().run(
        {"path": "app.py", "edits": [{"old_text": "'hi', name", "new_text": "'hello', name"}]},
        ToolContext(cwd=ws),
    )
    after = SOURCE.replace("'hi'", "'hello'")
    assert (ws / "app.py").read_text() == after
    assert result.output == "Edited app.py (1 edit)"
    assert result.diff == FileDiff(ws / "app.py", SOURCE, after)
    assert result.locations == (ws / "app.py",)


async def test_several_edits_apply_in_order_each_to_what_the_last_left(ws: Path) -> None:
    result = await EditFile().run(
        {
            "path": "app.py",
            "edits": [
                {"old_text": "def greet(name):", "new_text": "def welcome(name):"},
                {"old_text": "greet('you')", "new_text": "welcome('you')"},
                {"old_text": "welcome(name)", "new_text": "welcome(name: str)"},
            ],
        },
        ToolContext(cwd=ws),
    )
    assert result.output == "Edited app.py (3 edits)"
    assert (ws / "app.py").read_text() == (
        "def welcome(name: str):\n    print('hi', name)\n\n\ndef main():\n    welcome('you')\n"
    )


async def test_an_ambiguous_span_names_the_lines_it_stands_at_and_nothing_lands(
    ws: Path,
) -> None:
    with pytest.raises(ToolError) as failed:
        await EditFile().run(
            {
                "path": "app.py",
                "edits": [
                    {"old_text": "main", "new_text": "run"},  # unique: would land alone
                    {"old_text": "greet", "new_text": "welcome"},
                ],
            },
            ToolContext(cwd=ws),
        )
    assert str(failed.value) == (
        "edit 2: old_text occurs 2 times in app.py, at lines 1, 6; include more of the "
        "surrounding lines to make it unique, or set replace_all to replace every one"
    )
    assert (ws / "app.py").read_text() == SOURCE  # all or none


async def test_replace_all_replaces_every_occurrence(ws: Path) -> None:
    edits = [{"old_text": "greet", "new_text": "welcome", "replace_all": True}]
    await EditFile().run({"path": "app.py", "edits": edits}, ToolContext(cwd=ws))
    assert (ws / "app.py").read_text() == SOURCE.replace("greet", "welcome")


async def test_a_missing_span_says_to_read_again_and_a_missing_file_to_write_it(
    ws: Path,
) -> None:
    with pytest.raises(ToolError, match=r"^the edit: old_text does not occur in app\.py; read"):
        await EditFile().run(
            {"path": "app.py", "edits": [{"old_text": "print('bye')", "new_text": "x"}]},
            ToolContext(cwd=ws),
        )
    with pytest.raises(ToolError, match=r"^new\.py does not exist; create it with write_file$"):
        await EditFile().run(
            {"path": "new.py", "edits": [{"old_text": "a", "new_text": "b"}]},
            ToolContext(cwd=ws),
        )


async def test_many_matches_are_named_up_to_a_limit(ws: Path) -> None:
    (ws / "many.txt").write_text("x = 1\n" * (SHOWN_MATCHES + 5))
    with pytest.raises(ToolError) as failed:
        await EditFile().run(
            {"path": "many.txt", "edits": [{"old_text": "x = 1", "new_text": "x = 2"}]},
            ToolContext(cwd=ws),
        )
    lines = ", ".join(str(n) for n in range(1, SHOWN_MATCHES + 1))
    assert f"at lines {lines}, ... (5 more);" in str(failed.value)


async def test_a_crlf_file_keeps_its_line_endings_and_its_mode(ws: Path) -> None:
    script = ws / "run.sh"
    script.write_bytes(b"#!/bin/sh\r\necho one\r\necho two\r\n")
    script.chmod(0o755)
    edits = [{"old_text": "echo one\necho two", "new_text": "echo 1\necho 2"}]
    await EditFile().run({"path": "run.sh", "edits": edits}, ToolContext(cwd=ws))
    assert script.read_bytes() == b"#!/bin/sh\r\necho 1\r\necho 2\r\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


async def test_the_preview_is_the_diff_and_changes_nothing(ws: Path) -> None:
    edits = [{"old_text": "print('hi', name)", "new_text": "print('hello', name)"}]
    preview = await EditFile().preview({"path": "app.py", "edits": edits}, ToolContext(cwd=ws))
    assert preview.diff == FileDiff(
        ws / "app.py", SOURCE, SOURCE.replace("print('hi'", "print('hello'")
    )
    assert (ws / "app.py").read_text() == SOURCE


async def test_paths_outside_the_workspace_and_empty_edits_are_refused(ws: Path) -> None:
    with pytest.raises(ToolError, match="outside"):
        await EditFile().run(
            {"path": "../x", "edits": [{"old_text": "a", "new_text": "b"}]}, ToolContext(cwd=ws)
        )
    with pytest.raises(ToolError, match="invalid arguments for edit_file"):
        await EditFile().run({"path": "app.py", "edits": []}, ToolContext(cwd=ws))
    with pytest.raises(ToolError, match="invalid arguments for edit_file"):
        await EditFile().run(
            {"path": "app.py", "edits": [{"old_text": "", "new_text": "b"}]}, ToolContext(cwd=ws)
        )
