"""Fixtures the whole suite shares: a session's log, on disk, in the test's own folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from parleyd.store.log import SessionLog


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A session's folder; not created yet: opening the log creates it."""
    return tmp_path / "sessions" / "sess_1"


@pytest.fixture
def opened(folder: Path) -> Iterator[SessionLog]:
    """The session's log, open (and so locked) for the test."""
    log, _ = SessionLog.open(folder)
    yield log
    log.close()
