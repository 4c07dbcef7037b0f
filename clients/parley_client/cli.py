"""`parley`: talk to parleyd from a terminal.

    parley prompt "Summarize README.md"        a new session in this directory
    parley prompt --session ID "and now?"      continue a stored session
    parley sessions [--all]                    this directory's sessions (or all)
    parley show ID                             replay a stored session
    parley attach ID                           a session running in the background, live
    parley demo                                a guided tour with the scripted model

Exit status: 0 ok, 1 error (one line on stderr), 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Final, NoReturn, get_args

from rich.console import Console
from rich.text import Text

from parley_client.attachments import file_block
from parley_client.connection import ParleyClient
from parley_client.demo import run_demo
from parley_client.errors import ParleyError
from parley_client.permissions import PermissionHandler, allow_all, deny_all
from parley_client.render import Renderer, print_sessions
from parley_client.scripts import daemon_command, parley_command, shared_daemon_command
from parley_client.terminal import Interrupts, answer_by_flag, ask_on_terminal
from parley_protocol.acp import (
    ContentBlock,
    SessionInfo,
    SessionInfoUpdate,
    SessionNotification,
    StopReason,
)
from parley_protocol.jsonrpc import ErrorCode
from parley_protocol.parley import PARLEY_META_KEY, ReplayFromStart, SessionSettings
from parleyd.config import PROVIDERS, data_home

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_INTERRUPTED: Final = 130


class CliError(Exception):
    """A mistake on the command line, reported like a daemon error: one line, exit 1."""


Command = Callable[[argparse.Namespace, Console, Interrupts], Awaitable[int]]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line and the CLI's error status, like every other failure.
        self.exit(EXIT_ERROR, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _common_options(parser: argparse.ArgumentParser, *, inherited: bool) -> None:
    """--provider/--model/--home, accepted before or after the command name. After
    it, an option left out must not reset what was given before it."""
    default = argparse.SUPPRESS if inherited else None
    parser.add_argument(
        "--provider",
        default=default,
        choices=PROVIDERS,
        help=f"provider for new sessions ({', '.join(PROVIDERS)})",
    )
    parser.add_argument("--model", default=default, help="model for new sessions")
    parser.add_argument(
        "--home",
        type=Path,
        default=default,
        help="where sessions live (sets PARLEY_HOME for the daemon)",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        default=default,
        help="run a daemon of this command's own, not the shared one editors use",
    )


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    _common_options(common, inherited=True)

    parser = _Parser(prog="parley", description="A terminal client for parleyd.")
    _common_options(parser, inherited=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prompt = commands.add_parser(
        "prompt", parents=[common], help="send a prompt, stream the answer"
    )
    prompt.add_argument("text", help="what to ask")
    prompt.add_argument("--session", metavar="ID", help="continue this session")
    prompt.add_argument(
        "--attach",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="send this file with the prompt (an image, a text file, a PDF, ...); repeatable",
    )
    prompt.add_argument(
        "--replay", action="store_true", help="with --session: show the conversation so far"
    )
    _answer_options(prompt)
    prompt.set_defaults(run=_prompt)

    sessions = commands.add_parser("sessions", parents=[common], help="list stored sessions")
    sessions.add_argument("--all", action="store_true", help="every directory, not only this one")
    sessions.set_defaults(run=_sessions)

    show = commands.add_parser("show", parents=[common], help="replay a stored session")
    show.add_argument("session", metavar="ID")
    show.set_defaults(run=_show)

    attach = commands.add_parser(
        "attach",
        parents=[common],
        help="show a session and, while its turn runs on in the shared daemon, follow it"
        " live (Ctrl-C leaves it running)",
    )
    attach.add_argument("session", metavar="ID")
    _answer_options(attach)
    attach.set_defaults(run=_attach)

    demo = commands.add_parser(
        "demo", help="a guided tour with the scripted offline model, in a scratch directory"
    )
    demo.add_argument(
        "--dir",
        type=Path,
        help="where to create the scratch workspace and home (default: a new temp dir)",
    )
    demo.set_defaults(run=_demo)
    return parser


def _answer_options(command: argparse.ArgumentParser) -> None:
    answer = command.add_mutually_exclusive_group()
    answer.add_argument("--yes", action="store_true", help="allow every tool call (once each)")
    answer.add_argument("--no", action="store_true", help="reject every tool call")


def _client(
    arguments: argparse.Namespace, permission_handler: PermissionHandler = deny_all
) -> ParleyClient:
    """A connection to the shared daemon (through the `parleyd` shim, as an
    editor's), or with --standalone to a daemon of this command's own."""
    command = daemon_command() if arguments.standalone else shared_daemon_command()
    # The daemon's stderr is kept, not shown: its last line explains a crash.
    return ParleyClient(command, stderr="capture", permission_handler=permission_handler)


def _settings(arguments: argparse.Namespace) -> SessionSettings | None:
    if arguments.provider is None and arguments.model is None:
        return None
    return SessionSettings(provider=arguments.provider, model=arguments.model)


def _permission_handler(
    arguments: argparse.Namespace, console: Console, renderer: Renderer
) -> PermissionHandler:
    if arguments.yes:
        return answer_by_flag(renderer, allow_all, "--yes")
    if arguments.no:
        return answer_by_flag(renderer, deny_all, "--no")
    if sys.stdin.isatty() and console.is_terminal:
        return ask_on_terminal(console, renderer)
    return answer_by_flag(renderer, deny_all, "no terminal to ask on; pass --yes to allow")


async def _prompt(arguments: argparse.Namespace, console: Console, interrupts: Interrupts) -> int:
    attached = [_attached(path) for path in arguments.attach]
    renderer = Renderer.for_console(console)
    handler = _permission_handler(arguments, console, renderer)
    async with _client(arguments, handler) as client:
        await client.initialize()
        cwd = Path.cwd()
        if arguments.session:
            session_id = arguments.session
            with _unknown_session_refused(session_id):
                if arguments.replay:
                    await client.run_with_updates(
                        client.load_session(session_id, cwd), renderer.feed, session_id
                    )
                    renderer.finish()
                else:
                    await client.load_session(session_id, cwd)
        else:
            session_id = await client.new_session(cwd, _settings(arguments))

        cancelling: list[asyncio.Task[None]] = []

        def cancel_turn() -> None:
            renderer.note("cancelling the turn (Ctrl-C again to quit)", "yellow")
            cancelling.append(asyncio.create_task(client.cancel(session_id)))

        interrupts.on_first = cancel_turn
        response = await client.run_with_updates(
            client.prompt(session_id, arguments.text, attached), renderer.feed, session_id
        )
        await asyncio.gather(*cancelling)
        renderer.finish(response.stop_reason)
        if console.is_terminal:
            # Unwrapped, so the command pastes into a shell whole.
            continuing = f"session {session_id} · {_continue_command(arguments, session_id)}"
            console.print(Text(continuing, style="dim"), soft_wrap=True)
        else:
            renderer.note(f"[session] {session_id}")
    return EXIT_INTERRUPTED if response.stop_reason == "cancelled" else EXIT_OK


def _continue_command(arguments: argparse.Namespace, session_id: str) -> str:
    """What to type to continue this session, its next prompt left to fill in."""
    home = ["--home", os.environ["PARLEY_HOME"]] if arguments.home is not None else []
    command = [*parley_command(), *home, "prompt", "--session", session_id]
    return f'{shlex.join(command)} "..."'


def _unknown_session(session_id: str) -> CliError:
    """Every command words an unknown session id alike."""
    return CliError(f"no session {session_id} in {data_home()} (see `parley sessions --all`)")


def _attached(path: Path) -> ContentBlock:
    try:
        return file_block(path)
    except OSError as exc:
        raise CliError(f"cannot attach {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _unknown_session_refused(session_id: str) -> Iterator[None]:
    """The daemon's not-found answer to loading `session_id`, in the CLI's words."""
    try:
        yield
    except ParleyError as exc:
        if exc.code == ErrorCode.RESOURCE_NOT_FOUND:
            raise _unknown_session(session_id) from None
        raise


def _existing_dir(path: str) -> Path:
    # A session whose folder is gone can still be shown: the daemon only needs some
    # existing directory to open it in.
    return Path(path) if Path(path).is_dir() else Path.cwd()


async def _sessions(arguments: argparse.Namespace, console: Console, _: Interrupts) -> int:
    async with _client(arguments) as client:
        await client.initialize()
        sessions = await client.all_sessions(None if arguments.all else Path.cwd())
    print_sessions(console, sessions, with_cwd=arguments.all)
    return EXIT_OK


async def _stored(client: ParleyClient, session_id: str, renderer: Renderer) -> SessionInfo:
    """The stored session `session_id`, announced in one line."""
    stored = {info.session_id: info for info in await client.all_sessions()}
    info = stored.get(session_id)
    if info is None:
        raise _unknown_session(session_id)
    renderer.note(f"{info.session_id} · {info.title or 'untitled'} · {info.cwd}", "bold")
    return info


async def _show(arguments: argparse.Namespace, console: Console, _: Interrupts) -> int:
    renderer = Renderer.for_console(console)
    async with _client(arguments) as client:
        await client.initialize()
        info = await _stored(client, arguments.session, renderer)
        await client.run_with_updates(
            client.load_session(info.session_id, _existing_dir(info.cwd)),
            renderer.feed,
            info.session_id,
        )
        renderer.finish()
    return EXIT_OK


async def _attach(arguments: argparse.Namespace, console: Console, interrupts: Interrupts) -> int:
    renderer = Renderer.for_console(console)
    handler = _permission_handler(arguments, console, renderer)
    async with _client(arguments, handler) as client:
        await client.initialize()
        info = await _stored(client, arguments.session, renderer)
        leaving: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def leave() -> None:
            if not leaving.done():
                leaving.set_result(None)

        interrupts.on_first = leave
        stop_reason = None
        with client.updates(info.session_id) as updates:
            attached = await client.attach(
                info.session_id, _existing_dir(info.cwd), ReplayFromStart()
            )
            if attached.state == "idle":
                leave()  # nothing runs on: the replay is all there is
            async for notification in updates.until(leaving):
                renderer.feed(notification)
                if (ended := _turn_ended(notification)) is not None:
                    stop_reason = ended
                    break
        renderer.finish(stop_reason)
        if attached.state != "idle" and stop_reason is None:
            renderer.note(
                f"left {info.session_id} running; `parley attach {info.session_id}` follows it"
                " again",
                "yellow",
            )
            return EXIT_INTERRUPTED
    return EXIT_OK


def _turn_ended(notification: SessionNotification) -> StopReason | None:
    """How the turn ended, if `notification` says the session's turn is over
    (a turn that failed reads as `end_turn`: its error was shown already)."""
    update = notification.update
    if not isinstance(update, SessionInfoUpdate):
        return None
    turn = (update.meta or {}).get(PARLEY_META_KEY, {}).get("turn") or {}
    if turn.get("state") != "idle":
        return None
    ended = turn.get("stopReason")
    return ended if ended in get_args(StopReason) else "end_turn"


async def _demo(arguments: argparse.Namespace, console: Console, _: Interrupts) -> int:
    return await run_demo(console, arguments.dir)


async def _run(arguments: argparse.Namespace, console: Console) -> int:
    interrupts = Interrupts()
    interrupts.install()
    command: Command = arguments.run
    return await command(arguments, console, interrupts)


def main(argv: list[str] | None = None) -> None:
    arguments = _parser().parse_args(argv)
    if arguments.home is not None:
        os.environ["PARLEY_HOME"] = str(arguments.home.expanduser().resolve())
    console = Console(highlight=False)
    # Lines for a pipe or a log are not wrapped at an imaginary 80 columns.
    console.soft_wrap = not console.is_terminal
    try:
        code = asyncio.run(_run(arguments, console))
    except (KeyboardInterrupt, asyncio.CancelledError):
        code = EXIT_INTERRUPTED
    except (ParleyError, CliError) as exc:
        print(f"parley: {exc}", file=sys.stderr)
        code = EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (`parley show ID | head`): nothing more to say,
        # and nothing must be flushed into the closed pipe at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    sys.exit(code)
