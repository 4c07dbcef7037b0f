"""The model watchdog on its own, beside a response that grows when the test
says so: what it tells while the response stands still, that the end of every
wait is told unless the call was cancelled, that a failing call leaves it as it
came, and that it tells nothing before a whole interval of silence or when
turned off. The real turns and clients are in tests/e2e/test_slow_model.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from parleyd.session.alive import ModelWatch, Progress
from parleyd.session.wire import ModelStatus

INTERVAL = 0.02
# A hang fails the test instead of blocking the run.
PATIENCE = 10.0


class Response:
    """What the watchdog watches and whom it tells."""

    def __init__(self) -> None:
        self.grown = 0
        self.statuses: list[ModelStatus] = []
        self._sent = asyncio.Event()

    def progress(self) -> Progress:
        return Progress(self.grown, "more_output" if self.grown else "first_output")

    async def send(self, status: ModelStatus) -> None:
        self.statuses.append(status)
        self._sent.set()

    def watch(self, interval: float = INTERVAL) -> ModelWatch:
        return ModelWatch(interval, self.progress, self.send)

    async def until(self, told: Callable[[list[ModelStatus]], bool]) -> None:
        """Until the statuses sent are as `told` wants them."""
        async with asyncio.timeout(PATIENCE):
            while not told(self.statuses):
                self._sent.clear()
                await self._sent.wait()

    async def told(self, count: int) -> None:
        await self.until(lambda statuses: len(statuses) >= count)


async def test_silence_is_told_each_interval_and_its_end_once_the_response_grows() -> None:
    response = Response()
    async with response.watch():
        await response.told(3)
        response.grown = 1
        await response.until(lambda statuses: statuses[-1].waiting is None)
        over = len(response.statuses)
    *waiting, ended = response.statuses[:over]
    assert {status.waiting for status in waiting} == {"first_output"}
    seconds = [status.seconds for status in waiting]
    # One status per whole interval of the silence, each telling it longer.
    assert seconds == sorted(set(seconds)) and seconds[0] >= INTERVAL
    assert ended == ModelStatus(waiting=None)


async def test_a_silence_after_the_response_has_begun_awaits_more_of_it() -> None:
    response = Response()
    response.grown = 1
    async with response.watch():
        await response.told(1)
    assert response.statuses[0].waiting == "more_output"


async def test_a_call_that_ends_while_the_client_waits_tells_the_wait_is_over() -> None:
    response = Response()
    async with response.watch():
        await response.told(1)
    assert response.statuses[-1] == ModelStatus(waiting=None)
    assert [s for s in response.statuses if s.waiting is None] == [ModelStatus(waiting=None)]


async def test_a_failing_call_leaves_the_watch_as_it_came_and_still_ends_the_wait() -> None:
    response = Response()
    with pytest.raises(LookupError, match="the provider failed"):
        async with response.watch():
            await response.told(1)
            raise LookupError("the provider failed")
    assert response.statuses[-1] == ModelStatus(waiting=None)


async def test_a_cancelled_call_says_nothing_more() -> None:
    response = Response()

    async def call() -> None:
        async with response.watch():
            await asyncio.sleep(PATIENCE)

    running = asyncio.create_task(call())
    await response.told(1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    told = len(response.statuses)
    await asyncio.sleep(INTERVAL * 3)
    assert len(response.statuses) == told
    assert all(status.waiting is not None for status in response.statuses)


async def test_a_call_quicker_than_the_interval_tells_nothing() -> None:
    response = Response()
    async with response.watch(interval=60):
        await asyncio.sleep(INTERVAL)
    assert response.statuses == []


async def test_an_interval_of_zero_watches_nothing() -> None:
    response = Response()
    async with response.watch(interval=0):
        await asyncio.sleep(INTERVAL * 3)
    assert response.statuses == []
