"""glob and the project walk under it: what git ignores stays out, patterns
mean what they mean in a shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from parleyd.tools.base import ToolContext, ToolError
from parleyd.tools.glob_files import Glob
from parleyd.tools.search import SearchText
from parleyd.tools.walk import matches, project_files

FILES = (
    "README.md",
    "src/app.py",
    "src/util/strings.py",
    "src/util/notes.md",
    "build/out.py",
    "logs/keep.log",
    "logs/debug.log",
    "src/generated/schema.py",
)


def _tree(root: Path) -> Path:
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"TODO in {name}\n")
    (root / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (root / "src" / ".gitignore").write_text("generated/\n")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = _tree(tmp_path / "repo")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "README.md"], check=True)  # tracked or not
    (root / "link.py").symlink_to(root / "src" / "app.py")
    return root


def _relative(root: Path, files: object) -> list[str]:
    return [path.relative_to(root).as_posix() for path in files]  # type: ignore[attr-defined]


def test_in_a_git_work_tree_what_git_ignores_stays_out(repo: Path) -> None:
    assert _relative(repo, project_files(repo)) == [
        ".gitignore",
        "README.md",
        "logs/keep.log",  # negated back in
        "src/.gitignore",
        "src/app.py",
        "src/util/notes.md",
        "src/util/strings.py",
    ]
    assert _relative(repo, project_files(repo / "src")) == [
        "src/.gitignore",
        "src/app.py",
        "src/util/notes.md",
        "src/util/strings.py",
    ]


def test_outside_git_every_file_but_the_tooling_folders_is_walked(tmp_path: Path) -> None:
    root = _tree(tmp_path / "plain")
    (root / "node_modules" / "left").mkdir(parents=True)
    (root / "node_modules" / "left" / "index.js").write_text("")
    listed = _relative(root, project_files(root))
    assert "build/out.py" in listed and "logs/debug.log" in listed
    assert not any(name.startswith("node_modules/") for name in listed)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.py", "src/util/strings.py", True),  # a name pattern matches at any depth
        ("*.py", "app.pyc", False),
        ("src/*.py", "src/app.py", True),
        ("src/*.py", "src/util/strings.py", False),  # `*` stays within a folder
        ("src/**/*.py", "src/util/strings.py", True),
        ("src/**/*.py", "src/app.py", True),  # `**/` spans no folder too
        ("**/util/*", "src/util/notes.md", True),
        ("src/?pp.py", "src/app.py", True),
        ("[!a]*.md", "README.md", True),
        ("[a-c]*.py", "app.py", True),
        ("notes.md", "src/util/notes.md", True),
        ("(x).py", "(x).py", True),  # regex characters are literal
    ],
)
def test_patterns_match_as_a_shell_glob(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


async def test_glob_lists_matching_paths_from_the_workspace_root(repo: Path) -> None:
    result = await Glob().run({"pattern": "**/*.py"}, ToolContext(cwd=repo))
    assert result.output == "src/app.py\nsrc/util/strings.py"
    assert result.locations == (repo / "src/app.py", repo / "src/util/strings.py")
    within = await Glob().run({"pattern": "util/*", "path": "src"}, ToolContext(cwd=repo))
    assert within.output == "src/util/notes.md\nsrc/util/strings.py"


async def test_glob_says_when_nothing_matches_and_when_it_stopped(repo: Path) -> None:
    none = await Glob().run({"pattern": "*.rs"}, ToolContext(cwd=repo))
    assert none.output == "No files match '*.rs' in ."
    capped = await Glob().run({"pattern": "*", "max_results": 2}, ToolContext(cwd=repo))
    assert capped.output.splitlines() == [
        ".gitignore",
        "README.md",
        "[stopped at 2 files; narrow the pattern or the path, or raise max_results]",
    ]
    with pytest.raises(ToolError, match="is not a directory"):
        await Glob().run({"pattern": "*", "path": "README.md"}, ToolContext(cwd=repo))
    with pytest.raises(ToolError, match="outside"):
        await Glob().run({"pattern": "*", "path": ".."}, ToolContext(cwd=repo))


async def test_search_leaves_out_what_git_ignores_too(repo: Path) -> None:
    result = await SearchText().run({"pattern": "TODO"}, ToolContext(cwd=repo))
    assert [line.split(":")[0] for line in result.output.splitlines()] == [
        "README.md",
        "logs/keep.log",
        "src/app.py",
        "src/util/notes.md",
        "src/util/strings.py",
    ]
