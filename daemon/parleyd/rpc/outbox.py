"""Notifications on their way to the client, one lane per session, written in turns.

Every session of a connection shares its one output. Written straight into it,
a burst of updates from busy sessions would stand between the client and
everything else: an answer to a cancel waited behind all of it (1.5 s with
twenty sessions streaming). So notifications queue in their session's lane,
and one task moves them to the output a few per lane in turn, while the output
is below its mark. Answers and requests to the client are written straight to
the output: they wait behind at most one turn of each lane, not behind every
lane's backlog. A request's answer follows the notifications its session
queued before it (`flushed`), so a client still reads them in order, and a
lane a control request is about takes its turns ahead of the others (`hurry`).

While the client is behind (the output is full and the writer waits for it),
a lane takes new notifications by folding them (see `Coalescing`): nothing is
dropped or reordered, and a client that stops reading holds little memory and
delays no other session. A lane holding `LANE_LIMIT` notifications that could
not be folded makes its producer wait, once what it put is queued: the order
of a lane is the order of the `put` calls, however long any of them waits, so
the updates a record implies reach the client as a replay of the log has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from parleyd.rpc.transport import FrameWriter

P = TypeVar("P")

log = logging.getLogger(__name__)

# Notifications moved from one lane per turn, and the bytes they may come to
# (past the first): no lane waits behind more than this of each other lane's.
TURN_FRAMES = 16
TURN_BYTES = 32 * 1024
LANE_LIMIT = 64
# How much joins into one queued notification: a client reads a frame whole,
# and some cap a line's length (so a lane full of joined text, the producer waits).
JOIN_LIMIT = 16 * 1024
# While a control request about one lane is served (a cancel, a pause), the
# producers of the others wait at their next notification until it is
# answered, so the few loop iterations the request needs are short. Never
# longer than `HURRY_SECONDS`, whatever becomes of the request.
HURRY_SECONDS = 2.0
CLOSE_SECONDS = 5.0


class Coalescing(Protocol[P]):
    """Which queued notifications may stand for several."""

    def key(self, params: P) -> Hashable | None:
        """Notifications of one key fold into one while the client is behind;
        None: this one never folds."""
        ...

    def replaces(self, key: Hashable) -> bool:
        """Whether the newest of the key replaces the one queued wherever it
        stands (a state, where only the latest matters), rather than only
        joining the last one queued (a stream, whose pieces stay in order)."""
        ...

    def piece(self, params: P) -> tuple[object, int]:
        """What a notification joining a queued one adds to it (kept small: a
        client that reads nothing may leave a whole answer queued), and its
        size, which `JOIN_LIMIT` caps."""
        ...

    def fold(self, first: P, pieces: list[object]) -> P:
        """One notification standing for `first` and the pieces joined to it."""
        ...


@dataclass
class _Queued(Generic[P]):
    key: Hashable | None
    params: P
    pieces: list[object] = field(default_factory=list)
    joined: int = 0


@dataclass
class _Lane(Generic[P]):
    queue: deque[_Queued[P]] = field(default_factory=deque)
    # Keys that replace, to the one queued for them.
    states: dict[Hashable, _Queued[P]] = field(default_factory=dict)
    # Notifications ever queued, and ever taken out to be written: `flushed`
    # waits for the second to reach what the first was when it was called.
    queued: int = 0
    taken: int = 0
    # (queued count, its waiter), oldest first.
    flush_waiters: deque[tuple[int, asyncio.Future[None]]] = field(default_factory=deque)
    # Set while the lane has room.
    room: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.room.set()

    def release_flushed(self, everything: bool = False) -> None:
        waiters = self.flush_waiters
        while waiters and (everything or waiters[0][0] <= self.taken):
            _, waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


class Outbox(Generic[P]):
    def __init__(
        self,
        writer: FrameWriter,
        encode: Callable[[P], bytes],
        coalescing: Coalescing[P],
    ) -> None:
        self._writer = writer
        self._encode = encode
        self._coalescing = coalescing
        self._lanes: dict[str, _Lane[P]] = {}
        # Lanes with something queued, in the order they get their turns.
        self._turns: deque[str] = deque()
        self._work = asyncio.Event()
        self._behind = False
        self._task: asyncio.Task[None] | None = None
        # Lanes a control request is being served for -> what ends the hurry
        # if the request never settles; `_calm` is set while there are none.
        self._hurried: dict[str, asyncio.TimerHandle] = {}
        self._calm = asyncio.Event()
        self._calm.set()

    async def put(self, lane_id: str, *notifications: P) -> None:
        """Queue notifications in their lane, in this order and all at once
        (nothing another producer puts comes between them); then wait while
        the lane is full."""
        if self._writer.closed:
            return  # the client has gone
        lane = self._lanes.get(lane_id)
        if lane is None:
            lane = self._lanes[lane_id] = _Lane()
        for params in notifications:
            self._queue(lane_id, lane, params)
        self._work.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write_in_turns())
        if len(lane.queue) >= LANE_LIMIT:
            lane.room.clear()
            await lane.room.wait()
        # A producer yields the event loop at every put: one loop iteration
        # runs a step of every ready producer, and a control request (a
        # cancel) needs a few iterations, so each step must stay short. A
        # notification already stands for what one network read delivered.
        if self._hurried and lane_id not in self._hurried:
            await self._calm.wait()
        else:
            await asyncio.sleep(0)

    def _queue(self, lane_id: str, lane: _Lane[P], params: P) -> None:
        key = self._coalescing.key(params)
        if self._behind and key is not None and self._folded(lane, key, params):
            return
        queued = _Queued(key, params)
        if not lane.queue:
            self._turns.append(lane_id)
        lane.queue.append(queued)
        lane.queued += 1
        if key is not None and self._coalescing.replaces(key):
            lane.states[key] = queued

    def hurry(self, lane_id: str) -> None:
        """A control request about the lane is being served: the other lanes'
        producers wait until it `settled`, or `HURRY_SECONDS` at most."""
        if (expiry := self._hurried.pop(lane_id, None)) is not None:
            expiry.cancel()
        loop = asyncio.get_running_loop()
        self._hurried[lane_id] = loop.call_later(HURRY_SECONDS, self.settled, lane_id)
        self._calm.clear()

    def settled(self, lane_id: str) -> None:
        if (expiry := self._hurried.pop(lane_id, None)) is not None:
            expiry.cancel()
        if not self._hurried:
            self._calm.set()

    async def flushed(self, lane_id: str) -> None:
        """Until what the lane holds now is on its way to the client (not what
        it takes meanwhile: a session streaming on would keep its lane full)."""
        lane = self._lanes.get(lane_id)
        if lane is None or self._writer.closed or lane.taken >= lane.queued:
            return
        waiter = asyncio.get_running_loop().create_future()
        lane.flush_waiters.append((lane.queued, waiter))
        await waiter

    def _folded(self, lane: _Lane[P], key: Hashable, params: P) -> bool:
        """Fold `params` into what the lane holds, as its coalescing allows;
        whether it could."""
        if self._coalescing.replaces(key):
            queued = lane.states.get(key)
            if queued is None:
                return False
            queued.params = params
            return True
        last = lane.queue[-1] if lane.queue else None
        if last is None or last.key != key or last.joined >= JOIN_LIMIT:
            return False
        piece, size = self._coalescing.piece(params)
        last.pieces.append(piece)
        last.joined += size
        return True

    async def _write_in_turns(self) -> None:
        writer = self._writer
        try:
            while not writer.closed:
                if not self._turns:
                    self._work.clear()
                    await self._work.wait()
                    continue
                self._take_turn(self._next_lane())
                # Behind while the output waits for the client: what queues
                # meanwhile folds.
                self._behind = True
                await writer.wait_for_room()
                self._behind = False
        finally:
            # Nobody waits on a lane the client will never read.
            self._calm.set()
            for lane in self._lanes.values():
                lane.release_flushed(everything=True)
                lane.room.set()

    def _next_lane(self) -> str:
        """The lane whose turn is next: a hurried one with something queued,
        or else the one that has waited longest."""
        turns = self._turns
        for hurried in self._hurried:
            if hurried in turns:
                turns.remove(hurried)
                return hurried
        return turns.popleft()

    def _take_turn(self, lane_id: str) -> None:
        lane = self._lanes[lane_id]
        written = 0
        for _ in range(min(TURN_FRAMES, len(lane.queue))):
            if written > TURN_BYTES:
                break
            queued = lane.queue.popleft()
            lane.taken += 1
            if queued.key is not None and lane.states.get(queued.key) is queued:
                del lane.states[queued.key]
            params = queued.params
            try:
                if queued.pieces:
                    params = self._coalescing.fold(params, queued.pieces)
                body = self._encode(params)
            except Exception:
                # One notification that cannot be written must not stop every
                # lane (and every answer waiting on one).
                log.exception("dropped a notification that could not be encoded")
                continue
            self._writer.write_nowait(body)
            written += len(body)
        lane.release_flushed()
        if lane.queue:
            self._turns.append(lane_id)
        if len(lane.queue) < LANE_LIMIT:
            lane.room.set()

    async def close(self) -> None:
        """Write what the lanes hold, within `CLOSE_SECONDS` (the client may
        have stopped reading), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                for lane_id in list(self._lanes):
                    await self.flushed(lane_id)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
