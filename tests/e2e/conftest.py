"""Fixtures every end-to-end test file may take."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A Parley data folder of the test's own (`PARLEY_HOME`), not created yet."""
    return tmp_path / "home"
