from __future__ import annotations

import os
from pathlib import Path

import pytest

from parleyd.tools.base import ToolError
from parleyd.tools.paths import Workspace


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Workspace, Path]:
    """A workspace with a file and a directory inside, and a sibling outside."""
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print()\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    return Workspace.at(root), outside


def test_relative_and_absolute_paths_inside(layout: tuple[Workspace, Path]) -> None:
    ws, _ = layout
    assert ws.resolve("src/main.py") == ws.real_root / "src" / "main.py"
    assert ws.resolve(str(ws.root / "src" / "main.py")) == ws.real_root / "src" / "main.py"
    assert ws.resolve("src/../src/./main.py") == ws.real_root / "src" / "main.py"
    assert ws.resolve(".") == ws.real_root
    assert ws.relative(ws.resolve("src/main.py")) == "src/main.py"
    assert ws.relative(ws.resolve(".")) == "."


def test_paths_that_do_not_exist_yet_resolve(layout: tuple[Workspace, Path]) -> None:
    ws, _ = layout
    assert ws.resolve("new/dir/file.txt") == ws.real_root / "new" / "dir" / "file.txt"


def test_dotdot_escape_is_refused_with_path_and_root(layout: tuple[Workspace, Path]) -> None:
    ws, _ = layout
    with pytest.raises(ToolError) as caught:
        ws.resolve("../outside/secret.txt")
    assert str(caught.value) == (f"path '../outside/secret.txt' is outside the workspace {ws.root}")


def test_absolute_path_outside_is_refused(layout: tuple[Workspace, Path]) -> None:
    ws, outside = layout
    with pytest.raises(ToolError, match="is outside the workspace"):
        ws.resolve(str(outside / "secret.txt"))
    with pytest.raises(ToolError, match="is outside the workspace"):
        ws.resolve("/etc/passwd")


def test_symlinked_file_pointing_outside_is_refused(layout: tuple[Workspace, Path]) -> None:
    ws, outside = layout
    (ws.root / "innocent.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(ToolError) as caught:
        ws.resolve("innocent.txt")
    message = str(caught.value)
    assert "'innocent.txt' is outside the workspace" in message
    assert f"symlink to {outside / 'secret.txt'}" in message


def test_symlinked_directory_pointing_outside_is_refused(
    layout: tuple[Workspace, Path],
) -> None:
    ws, outside = layout
    (ws.root / "docs").symlink_to(outside)
    with pytest.raises(ToolError, match="leads through a symlink"):
        ws.resolve("docs/secret.txt")
    with pytest.raises(ToolError, match="leads through a symlink"):
        ws.resolve("docs/not-yet-there.txt")


def test_dangling_symlink_pointing_outside_is_refused(layout: tuple[Workspace, Path]) -> None:
    ws, outside = layout
    (ws.root / "trap.txt").symlink_to(outside / "would-be-created.txt")
    with pytest.raises(ToolError, match="outside the workspace"):
        ws.resolve("trap.txt")


def test_dotdot_after_a_symlink_follows_the_os(layout: tuple[Workspace, Path]) -> None:
    # `docs/..` is the parent of the symlink's target, not the workspace.
    ws, outside = layout
    (ws.root / "docs").symlink_to(outside)
    with pytest.raises(ToolError, match="outside the workspace"):
        ws.resolve("docs/../outside/secret.txt")


def test_symlinks_staying_inside_are_followed(layout: tuple[Workspace, Path]) -> None:
    ws, _ = layout
    (ws.root / "alias").symlink_to(ws.root / "src")
    (ws.root / "dangling-inside").symlink_to("src/new.py")
    assert ws.resolve("alias/main.py") == ws.real_root / "src" / "main.py"
    assert ws.resolve("dangling-inside") == ws.real_root / "src" / "new.py"


def test_symlinked_workspace_root(tmp_path: Path, layout: tuple[Workspace, Path]) -> None:
    real, outside = layout
    link = tmp_path / "link-to-ws"
    link.symlink_to(real.root)
    ws = Workspace.at(link)
    assert ws.root == link
    assert ws.real_root == real.real_root
    resolved = ws.resolve("src/main.py")
    assert resolved == real.real_root / "src" / "main.py"
    assert ws.resolve(str(link / "src" / "main.py")) == resolved
    assert ws.relative(resolved) == "src/main.py"
    assert ws.client_path(resolved) == link / "src" / "main.py"
    with pytest.raises(ToolError, match="outside the workspace"):
        ws.resolve("../outside/secret.txt")
    with pytest.raises(ToolError, match="outside the workspace"):
        ws.resolve(str(outside))


def test_symlink_loop_inside_resolves_and_fails_later(layout: tuple[Workspace, Path]) -> None:
    ws, _ = layout
    (ws.root / "a").symlink_to("b")
    (ws.root / "b").symlink_to("a")
    with pytest.raises(OSError):
        ws.resolve("a").read_text()


def test_nul_byte_and_missing_workspace(tmp_path: Path, layout: tuple[Workspace, Path]) -> None:
    ws, _ = layout
    with pytest.raises(ToolError, match="NUL"):
        ws.resolve("a\0b")
    with pytest.raises(ToolError, match="not an existing directory"):
        Workspace.at(tmp_path / "missing")


def test_relative_workspace_is_made_absolute(
    layout: tuple[Workspace, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = layout
    monkeypatch.chdir(ws.root.parent)
    relative = Workspace.at(Path("ws"))
    assert relative.root.is_absolute()
    assert relative.resolve("src") == Path(os.path.realpath(ws.root / "src"))


def test_further_roots_take_absolute_paths_and_show_them_in_full(tmp_path: Path) -> None:
    cwd, shared = tmp_path / "app", tmp_path / "shared"
    (cwd / "src").mkdir(parents=True)
    (shared / "lib").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    ws = Workspace.at(cwd, (shared,))
    inside = ws.resolve(str(shared / "lib" / "util.py"))
    assert inside == shared.resolve() / "lib" / "util.py"
    assert ws.relative(inside) == f"{shared}/lib/util.py"
    assert ws.client_path(inside) == shared / "lib" / "util.py"
    assert ws.relative(ws.resolve("src/main.py")) == "src/main.py"  # cwd's stay relative
    with pytest.raises(ToolError) as caught:
        ws.resolve(str(tmp_path / "elsewhere" / "x"))
    assert str(caught.value) == (
        f"path '{tmp_path / 'elsewhere' / 'x'}' is outside the workspace {cwd}, {shared}"
    )
    with pytest.raises(ToolError, match="is not an existing directory"):
        Workspace.at(cwd, (tmp_path / "missing",))


def test_a_root_reached_through_a_symlink_in_cwd_keeps_the_name_it_was_given(
    tmp_path: Path,
) -> None:
    (tmp_path / "real-lib").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "lib").symlink_to(tmp_path / "real-lib")
    ws = Workspace.at(tmp_path / "app", (tmp_path / "app" / "lib",))
    file = ws.resolve("lib/a.py")  # through the symlink, into the further root
    assert ws.client_path(file) == tmp_path / "app" / "lib" / "a.py"
    assert ws.relative(file) == f"{tmp_path}/app/lib/a.py"
