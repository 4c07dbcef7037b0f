"""Fixtures every end-to-end test file may take."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A Parley data folder of the test's own (`PARLEY_HOME`), not created yet."""
    return tmp_path / "home"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty folder to run sessions in; a test file that needs files in it
    has a `workspace` of its own."""
    root = tmp_path / "workspace"
    root.mkdir()
    return root
