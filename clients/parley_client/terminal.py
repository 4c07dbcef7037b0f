"""The interactive side of the CLI: Ctrl-C handling and permission questions."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from typing import Final

from rich.console import Console
from rich.text import Text

from parley_client.permissions import PermissionHandler, choose
from parley_client.render import Renderer
from parley_protocol.acp import PermissionOptionId, PermissionOptionKind, RequestPermissionRequest

_ANSWERS: Final[dict[str, PermissionOptionKind]] = {
    "y": "allow_once",
    "a": "allow_always",
    "n": "reject_once",
}


_QUESTION: Final = Text.assemble(
    ("Allow? ", "bold"),
    ("y", "bold green"),
    " once  ",
    ("a", "bold green"),
    " always  ",
    ("n", "bold red"),
    " reject: ",
)


class Interrupts:
    """Ctrl-C: the first press runs `on_first` (cancel the turn) when one is set,
    any other press cancels the main task, which the CLI turns into exit 130."""

    def __init__(self) -> None:
        self.on_first: Callable[[], None] | None = None
        self.pressed = 0
        self._main: asyncio.Task[object] | None = None

    def install(self) -> None:
        self._main = asyncio.current_task()
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._press)

    def _press(self) -> None:
        self.pressed += 1
        if self.pressed == 1 and self.on_first is not None:
            self.on_first()
        elif self._main is not None:
            self._main.cancel()


async def read_line() -> str:
    """A line from stdin without blocking the loop, and cancellable (a Ctrl-C
    during the question cancels the turn, which cancels the question)."""
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()
    fd = sys.stdin.fileno()

    def readable() -> None:
        if not line.done():
            line.set_result(sys.stdin.readline())

    loop.add_reader(fd, readable)
    try:
        return await line
    finally:
        loop.remove_reader(fd)


def ask_on_terminal(console: Console, renderer: Renderer) -> PermissionHandler:
    async def ask(request: RequestPermissionRequest) -> PermissionOptionId | None:
        renderer.permission_asked(request)
        with renderer.suspend():
            while True:
                console.print(_QUESTION, end="")
                line = await read_line()
                # End of input means nobody is there to say yes.
                kind = _ANSWERS.get(line.strip().lower()) if line else "reject_once"
                if kind is not None:
                    break
        option = choose(request, kind)
        renderer.permission_answered(option, "you")
        return option

    return ask


def answer_by_flag(renderer: Renderer, answer: PermissionHandler, why: str) -> PermissionHandler:
    """A fixed answer (`--yes`, `--no`, no terminal), shown as it is given."""

    async def answered(request: RequestPermissionRequest) -> PermissionOptionId | None:
        renderer.permission_asked(request)
        option = await answer(request)
        renderer.permission_answered(option, why)
        return option

    return answered
