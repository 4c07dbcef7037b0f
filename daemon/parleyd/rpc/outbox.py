"""Notifications on their way to the client, one lane per session, written in turns.

Every session of a connection shares its one output. Written straight into it,
a burst of updates from busy sessions would stand between the client and
everything else: an answer to a cancel waited behind all of it (1.5 s with
twenty sessions streaming). So notifications queue in their session's lane,
and one task moves them to the output a few per lane in turn, while the output
is below its mark. Answers and requests to the client are written straight to
the output: they wait behind at most one turn of each lane, not behind every
lane's backlog. A request's answer follows the notifications its session
queued before it (`flushed`), so a client still reads them in order.

While the client is behind (the output is full and the writer waits for it),
a lane takes new notifications by folding them (see `Coalescing`): nothing is
dropped or reordered, and a client that stops reading holds little memory and
delays no other session. A lane holding `LANE_LIMIT` notifications that could
not be folded makes its producer wait.
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

# Notifications moved from one lane per turn: no lane waits behind more than
# this many of each other lane's.
TURN_FRAMES = 16
LANE_LIMIT = 64
# How much joins into one queued notification: a client reads a frame whole,
# and some cap a line's length (so a lane full of joined text, the producer waits).
JOIN_LIMIT = 16 * 1024
# A producer yields the event loop after this many notifications: one loop
# iteration runs every ready producer, and a control request (a cancel) needs
# a few iterations, so each producer's share of one must stay short.
YIELD_EVERY = 8
# While a control request about one lane is served (a cancel, a pause), the
# producers of the others hold back this long at each notification, so the
# few loop iterations the request needs are short. Never longer than
# `HURRY_SECONDS`, whatever becomes of the request.
HOLD_BACK_SECONDS = 0.005
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
    # Set while the lane holds nothing: what `flushed` waits for.
    empty: asyncio.Event = field(default_factory=asyncio.Event)
    # Set while the lane has room.
    room: asyncio.Event = field(default_factory=asyncio.Event)
    # Notifications put since its producer last yielded.
    unyielded: int = 0

    def __post_init__(self) -> None:
        self.empty.set()
        self.room.set()


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
        # Lanes a control request is being served for -> until when, at most.
        self._hurried: dict[str, float] = {}

    async def put(self, lane_id: str, params: P) -> None:
        """Queue a notification in its lane; waits while the lane is full."""
        if self._writer.closed:
            return  # the client has gone
        lane = self._lanes.get(lane_id)
        if lane is None:
            lane = self._lanes[lane_id] = _Lane()
        key = self._coalescing.key(params)
        if self._behind and key is not None and self._folded(lane, key, params):
            return
        if len(lane.queue) >= LANE_LIMIT:
            lane.room.clear()
            await lane.room.wait()
        queued = _Queued(key, params)
        lane.queue.append(queued)
        if key is not None and self._coalescing.replaces(key):
            lane.states[key] = queued
        if lane.empty.is_set():
            lane.empty.clear()
            self._turns.append(lane_id)
        self._work.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write_in_turns())
        if self._hurried and self._holds_back(lane_id):
            await asyncio.sleep(HOLD_BACK_SECONDS)
            return
        lane.unyielded += 1
        if lane.unyielded >= YIELD_EVERY:
            lane.unyielded = 0
            await asyncio.sleep(0)

    def hurry(self, lane_id: str) -> None:
        """A control request about the lane is being served: the other lanes'
        producers hold back until it `settled`."""
        self._hurried[lane_id] = asyncio.get_running_loop().time() + HURRY_SECONDS

    def settled(self, lane_id: str) -> None:
        self._hurried.pop(lane_id, None)

    def _holds_back(self, lane_id: str) -> bool:
        if lane_id in self._hurried:
            return False
        now = asyncio.get_running_loop().time()
        for hurried, until in list(self._hurried.items()):
            if until < now:
                del self._hurried[hurried]
        return bool(self._hurried)

    async def flushed(self, lane_id: str) -> None:
        """Until what the lane held is on its way to the client."""
        lane = self._lanes.get(lane_id)
        if lane is not None and not self._writer.closed:
            await lane.empty.wait()

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
                self._take_turn(self._turns.popleft())
                # Behind while the output waits for the client: what queues
                # meanwhile folds.
                self._behind = True
                await writer.wait_for_room()
                self._behind = False
        finally:
            # Nobody waits on a lane the client will never read.
            for lane in self._lanes.values():
                lane.empty.set()
                lane.room.set()

    def _take_turn(self, lane_id: str) -> None:
        lane = self._lanes[lane_id]
        for _ in range(min(TURN_FRAMES, len(lane.queue))):
            queued = lane.queue.popleft()
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
        if lane.queue:
            self._turns.append(lane_id)
        else:
            lane.empty.set()
        if len(lane.queue) < LANE_LIMIT:
            lane.room.set()

    async def close(self) -> None:
        """Write what the lanes hold, within `CLOSE_SECONDS` (the client may
        have stopped reading), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                for lane in list(self._lanes.values()):
                    await lane.empty.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
