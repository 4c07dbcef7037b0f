from __future__ import annotations

import stat
from pathlib import Path

import pytest

from parleyd.tools.base import ToolContext, ToolError
from parleyd.tools.files import (
    MAX_LIST_ENTRIES,
    MAX_READ_BYTES,
    MAX_READ_LINES,
    ListDirectory,
    ReadFile,
    WriteFile,
)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


def ctx(root: Path) -> ToolContext:
    return ToolContext(cwd=root)


# read_file


async def test_read_whole_file_with_location(ws: Path) -> None:
    (ws / "a.txt").write_text("one\ntwo\n")
    result = await ReadFile().run({"path": "a.txt"}, ctx(ws))
    assert result.output == "one\ntwo\n"
    assert not result.is_error
    assert result.locations == (ws / "a.txt",)


async def test_read_offset_and_limit_say_where_to_continue(ws: Path) -> None:
    (ws / "a.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    result = await ReadFile().run({"path": "a.txt", "offset": 3, "limit": 2}, ctx(ws))
    assert result.output.splitlines() == [
        "line 3",
        "line 4",
        "[showing lines 3-4; the file continues: call read_file with offset=5 to read further]",
    ]
    tail = await ReadFile().run({"path": "a.txt", "offset": 9}, ctx(ws))
    assert tail.output == "line 9\nline 10\n"


async def test_read_truncates_at_the_line_cap(ws: Path) -> None:
    (ws / "long.txt").write_text("x\n" * (MAX_READ_LINES + 500))
    result = await ReadFile().run({"path": "long.txt", "limit": 10_000}, ctx(ws))
    lines = result.output.splitlines()
    assert len(lines) == MAX_READ_LINES + 1
    assert lines[-1] == (
        f"[output truncated at {MAX_READ_LINES} lines; showing lines 1-{MAX_READ_LINES}; "
        f"the file continues: call read_file with offset={MAX_READ_LINES + 1} to read further]"
    )


async def test_read_truncates_at_the_byte_cap(ws: Path) -> None:
    line = "y" * 999 + "\n"
    (ws / "wide.txt").write_text(line * 1000)  # ~1 MB in 1000 lines
    result = await ReadFile().run({"path": "wide.txt"}, ctx(ws))
    shown = MAX_READ_BYTES // len(line)
    assert result.output.startswith(line * shown)
    assert f"output truncated at {MAX_READ_BYTES // 1024} KiB" in result.output
    assert f"offset={shown + 1}" in result.output


async def test_read_cuts_an_overlong_line(ws: Path) -> None:
    (ws / "min.js").write_text("z" * (MAX_READ_BYTES * 2) + "\nnext\n")
    result = await ReadFile().run({"path": "min.js"}, ctx(ws))
    assert result.output.startswith("z" * MAX_READ_BYTES + "\n")
    assert "[line 1 is longer than 256 KiB; only its start is shown]" in result.output
    assert "offset=2" in result.output
    rest = await ReadFile().run({"path": "min.js", "offset": 2}, ctx(ws))
    assert rest.output == "next\n"


async def test_read_refuses_binary_directory_missing_and_past_end(ws: Path) -> None:
    (ws / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (ws / "sub").mkdir()
    (ws / "short.txt").write_text("a\nb\n")
    with pytest.raises(ToolError, match=r"image\.png is a binary file"):
        await ReadFile().run({"path": "image.png"}, ctx(ws))
    with pytest.raises(ToolError, match="sub: it is a directory"):
        await ReadFile().run({"path": "sub"}, ctx(ws))
    with pytest.raises(ToolError, match=r"cannot read nope\.txt: No such file"):
        await ReadFile().run({"path": "nope.txt"}, ctx(ws))
    with pytest.raises(ToolError, match=r"offset 5 is past the end of short\.txt \(2 lines\)"):
        await ReadFile().run({"path": "short.txt", "offset": 5}, ctx(ws))


async def test_read_empty_file_and_non_utf8(ws: Path) -> None:
    (ws / "empty").write_text("")
    (ws / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    assert (await ReadFile().run({"path": "empty"}, ctx(ws))).output == "[empty file]"
    assert (await ReadFile().run({"path": "latin1.txt"}, ctx(ws))).output == "caf\ufffd\n"


async def test_read_refuses_a_path_outside(ws: Path) -> None:
    (ws.parent / "secret").write_text("s")
    with pytest.raises(ToolError, match="outside the workspace"):
        await ReadFile().run({"path": "../secret"}, ctx(ws))


async def test_argument_errors_name_the_field(ws: Path) -> None:
    with pytest.raises(ToolError, match=r"invalid arguments for read_file: .*\$\.offset"):
        await ReadFile().run({"path": "a", "offset": 0}, ctx(ws))
    with pytest.raises(ToolError, match="unknown field `lines`"):
        await ReadFile().run({"path": "a", "lines": 3}, ctx(ws))
    with pytest.raises(ToolError, match=r"missing required field `path`.*accepted: path"):
        await ReadFile().run({}, ctx(ws))


async def test_numbers_sent_as_strings_are_accepted(ws: Path) -> None:
    (ws / "a.txt").write_text("1\n2\n3\n")
    result = await ReadFile().run({"path": "a.txt", "offset": "2", "limit": "1"}, ctx(ws))
    assert result.output.startswith("2\n")


# list_directory


async def test_list_sorted_with_dirs_marked_and_git_skipped(ws: Path) -> None:
    (ws / ".git").mkdir()
    (ws / "src").mkdir()
    (ws / "src" / "main.py").write_text("")
    (ws / "b.txt").write_text("")
    (ws / "A.md").write_text("")
    (ws / "link").symlink_to("src")
    result = await ListDirectory().run({}, ctx(ws))
    assert result.output == "A.md\nb.txt\nlink@\nsrc/"
    assert result.locations == (ws,)


async def test_list_depth_shows_nested_paths_but_not_tooling_dirs(ws: Path) -> None:
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "mod.py").write_text("")
    (ws / "src" / "main.py").write_text("")
    (ws / "node_modules" / "left-pad").mkdir(parents=True)
    result = await ListDirectory().run({"path": ".", "depth": 3}, ctx(ws))
    assert result.output.splitlines() == [
        "node_modules/",
        "src/",
        "src/main.py",
        "src/pkg/",
        "src/pkg/mod.py",
    ]
    sub = await ListDirectory().run({"path": "src", "depth": 1}, ctx(ws))
    assert sub.output == "main.py\npkg/"


async def test_list_caps_entries_keeping_the_top_level(ws: Path) -> None:
    (ws / "big").mkdir()
    for n in range(MAX_LIST_ENTRIES + 10):
        (ws / "big" / f"f{n:05}").write_text("")
    (ws / "z.txt").write_text("")
    result = await ListDirectory().run({"depth": 2}, ctx(ws))
    lines = result.output.splitlines()
    assert len(lines) == MAX_LIST_ENTRIES + 1
    assert "z.txt" in lines  # the top level comes first, whatever the sort order
    assert lines[-1].startswith(f"[listing stopped at {MAX_LIST_ENTRIES} entries")


async def test_list_errors(ws: Path) -> None:
    (ws / "file.txt").write_text("")
    with pytest.raises(ToolError, match=r"file\.txt is not a directory"):
        await ListDirectory().run({"path": "file.txt"}, ctx(ws))
    with pytest.raises(ToolError, match="nope does not exist"):
        await ListDirectory().run({"path": "nope"}, ctx(ws))
    with pytest.raises(ToolError, match=r"\$\.depth"):
        await ListDirectory().run({"depth": 6}, ctx(ws))
    (ws / "empty").mkdir()
    assert (await ListDirectory().run({"path": "empty"}, ctx(ws))).output == "[empty directory]"


# write_file


async def test_write_new_file_creates_parent_dirs(ws: Path) -> None:
    result = await WriteFile().run({"path": "a/b/c.txt", "content": "hi\nthere"}, ctx(ws))
    target = ws / "a" / "b" / "c.txt"
    assert target.read_text() == "hi\nthere"
    assert result.output == "Created a/b/c.txt (2 lines)"
    assert result.diff is not None
    assert result.diff.path == target
    assert result.diff.old_text is None
    assert result.diff.new_text == "hi\nthere"
    assert result.locations == (target,)
    assert [p.name for p in (ws / "a" / "b").iterdir()] == ["c.txt"]  # no temp file left


async def test_overwrite_reports_old_text_and_keeps_mode(ws: Path) -> None:
    script = ws / "run.sh"
    script.write_text("echo old\n")
    script.chmod(0o755)
    result = await WriteFile().run({"path": "run.sh", "content": "echo new\n"}, ctx(ws))
    assert script.read_text() == "echo new\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert result.output == "Wrote run.sh (1 line)"
    assert result.diff is not None
    assert result.diff.old_text == "echo old\n"


async def test_write_same_content_changes_nothing(ws: Path) -> None:
    (ws / "a.txt").write_text("same")
    result = await WriteFile().run({"path": "a.txt", "content": "same"}, ctx(ws))
    assert result.diff is None
    assert "nothing changed" in result.output


async def test_write_through_symlink_inside_replaces_the_target(ws: Path) -> None:
    (ws / "real.txt").write_text("old")
    (ws / "alias.txt").symlink_to("real.txt")
    result = await WriteFile().run({"path": "alias.txt", "content": "new"}, ctx(ws))
    assert (ws / "alias.txt").is_symlink()
    assert (ws / "real.txt").read_text() == "new"
    assert result.diff is not None
    assert result.diff.path == ws / "real.txt"


async def test_write_refuses_outside_paths_and_directories(ws: Path) -> None:
    outside = ws.parent / "outside"
    outside.mkdir()
    (ws / "escape").symlink_to(outside)
    (ws / "trap").symlink_to(outside / "planted.txt")
    for path in ("../x.txt", "escape/x.txt", "trap", str(outside / "x.txt")):
        with pytest.raises(ToolError, match="outside the workspace"):
            await WriteFile().run({"path": path, "content": "x"}, ctx(ws))
    assert list(outside.iterdir()) == []
    (ws / "dir").mkdir()
    with pytest.raises(ToolError, match="it is a directory"):
        await WriteFile().run({"path": "dir", "content": "x"}, ctx(ws))
    (ws / "file").write_text("")
    with pytest.raises(ToolError, match=r"cannot write file/x\.txt"):
        await WriteFile().run({"path": "file/x.txt", "content": "x"}, ctx(ws))


def test_tool_metadata() -> None:
    assert (ReadFile.kind, ListDirectory.kind, WriteFile.kind) == ("read", "read", "edit")
    assert (ReadFile.needs_permission, WriteFile.needs_permission) == (False, True)
    assert ReadFile().title({"path": "src/a.py"}) == "Read src/a.py"
    assert WriteFile().title({}) == "Write "
    for tool in (ReadFile, ListDirectory, WriteFile):
        assert tool.parameters["type"] == "object"
        assert "$ref" not in str(tool.parameters)
