"""The file tools through the editor (ACP's client file system), as far as it goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from parleyd.tools.base import ToolContext, ToolError
from parleyd.tools.edit import EditFile
from parleyd.tools.files import ReadFile, WriteFile


@dataclass
class Editor:
    buffers: dict[Path, str] = field(default_factory=dict)
    can_read: bool = True
    can_write: bool = True

    async def read_text(self, path: Path) -> str:
        if path not in self.buffers:
            raise ToolError(f"the editor could not read {path}: not open")
        return self.buffers[path]

    async def write_text(self, path: Path, content: str) -> None:
        self.buffers[path] = content


async def test_a_client_that_reads_but_does_not_write_gets_its_buffer_edited_on_disk(
    tmp_path: Path,
) -> None:
    file = tmp_path / "a.txt"
    file.write_text("on disk\n")
    editor = Editor({file: "in the buffer\n"}, can_write=False)
    context = ToolContext(cwd=tmp_path, editor=editor)
    edits = [{"old_text": "buffer", "new_text": "editor"}]
    await EditFile().run({"path": "a.txt", "edits": edits}, context)
    assert file.read_text() == "in the editor\n"  # the buffer's text, written to the disk
    assert editor.buffers[file] == "in the buffer\n"


async def test_a_file_the_editor_cannot_open_is_read_and_created_on_disk_as_before(
    tmp_path: Path,
) -> None:
    (tmp_path / "b.txt").write_text("line 1\nline 2\n")
    editor = Editor(can_write=False)
    context = ToolContext(cwd=tmp_path, editor=editor)
    read = await ReadFile().run({"path": "b.txt", "offset": 2}, context)
    assert read.output == "line 2\n"
    written = await WriteFile().run({"path": "new.txt", "content": "hi\n"}, context)
    assert written.output == "Created new.txt (1 line)"
    assert (tmp_path / "new.txt").read_text() == "hi\n"


async def test_pages_and_caps_hold_for_a_buffer_too(tmp_path: Path) -> None:
    file = tmp_path / "c.txt"
    file.write_text("")
    editor = Editor({file: "".join(f"line {n}\n" for n in range(1, 6))})
    read = await ReadFile().run(
        {"path": "c.txt", "offset": 2, "limit": 2}, ToolContext(cwd=tmp_path, editor=editor)
    )
    assert read.output.splitlines() == [
        "line 2",
        "line 3",
        "[showing lines 2-3; the file continues: call read_file with offset=4 to read further]",
    ]
    assert read.locations == (file,)
