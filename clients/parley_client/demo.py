"""`parley demo`: what an editor sees of Parley, end to end, with the scripted model.

In a scratch directory it starts parleyd, runs three prompts (a file read, a
write that asks permission, a story cancelled midway), stops the daemon, starts
a new one, loads the session back and checks that the replay carries exactly
what streamed live. No network and no API key: the model is Parley's scripted
offline stand-in, and the output says so.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.text import Text

from parley_client.connection import ParleyClient
from parley_client.launch import DaemonProcess
from parley_client.permissions import allow_all
from parley_client.render import Renderer
from parley_client.scripts import parley_command
from parley_client.terminal import answer_by_flag
from parley_client.transcript import KindComparison, compare_replay
from parley_protocol.acp import AgentMessageChunk, InitializeResponse, SessionNotification

CANCEL_AFTER_SECONDS: Final = 1.5
NOTE_TEXT: Final = "ship it"
PROMPTS: Final = (
    "Summarize README.md",
    f'Write a note saying "{NOTE_TEXT}"',
    "Tell me a long story",
)
README: Final = """# Lighthouse

A tiny sample project for the Parley demo: one module that greets people.

## Usage

Run `python src/lighthouse.py NAME` and it says hello.
"""
SOURCE: Final = """import sys


def greet(name: str) -> str:
    return f"Hello, {name}! The lamp is lit."


if __name__ == "__main__":
    print(greet(sys.argv[1] if len(sys.argv) > 1 else "sailor"))
"""
# Why live and replayed counts may differ while the content is the same.
_WHOLE: Final = "live streams each message in pieces; a replay sends it whole"
_COUNT_NOTES: Final = {
    "user_message_chunk": "the client sent these prompts itself; only a replay carries them",
    "agent_message_chunk": _WHOLE,
    "agent_thought_chunk": _WHOLE,
    "tool_call_update": "live also streams each call's transient in_progress step",
}


@dataclass(frozen=True)
class Scratch:
    root: Path
    workspace: Path
    home: Path

    @classmethod
    def create(cls, directory: Path | None) -> Scratch:
        root = (directory or Path(tempfile.mkdtemp(prefix="parley-demo-"))).resolve()
        workspace, home = root / "workspace", root / "home"
        (workspace / "src").mkdir(parents=True, exist_ok=True)
        (workspace / "README.md").write_text(README)
        (workspace / "src" / "lighthouse.py").write_text(SOURCE)
        return cls(root, workspace, home)

    def env(self) -> dict[str, str]:
        """The scripted model, data in the scratch home, nothing from the user's own
        Parley config or keys."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "OPENAI_"))}
        env.update(
            PARLEY_HOME=str(self.home),
            PARLEY_PROVIDER="offline",
            PARLEY_CONFIG=str(self.home / "no-config.toml"),
        )
        return env


class Demo:
    def __init__(self, console: Console, scratch: Scratch) -> None:
        self.console = console
        self.scratch = scratch
        self.live = Renderer.for_console(console)
        self.problems: list[str] = []
        self.session_id = ""

    # -- presentation --------------------------------------------------------------

    def step(self, title: str) -> None:
        self.console.print()
        self.console.rule(Text(title, style="bold"), align="left")

    def sent(self, text: str) -> None:
        self.console.print(Text(f"→ {text}", style="cyan"))

    def received(self, text: str) -> None:
        self.console.print(Text(f"← {text}", style="magenta"))

    def check(self, ok: bool, what: str) -> None:
        self.console.print(
            Text(f"{'✓' if ok else '✗'} {what}", style="green" if ok else "bold red")
        )
        if not ok:
            self.problems.append(what)

    # -- the tour ----------------------------------------------------------------

    async def run(self) -> int:
        self.console.print(
            Text(
                "Parley demo · scripted offline model (not an LLM: no network, no API key)",
                style="bold",
            )
        )
        self.console.print(f"workspace {self.scratch.workspace}\nhome      {self.scratch.home}")
        await self._first_daemon()
        await self._second_daemon()
        self._summary()
        return 1 if self.problems else 0

    def _daemon(self) -> DaemonProcess:
        return DaemonProcess(env=self.scratch.env(), stderr="capture")

    async def _start(self, daemon: DaemonProcess, client: ParleyClient) -> None:
        self.sent(f"spawn {' '.join(daemon.command)}  (PARLEY_PROVIDER=offline)")
        self.received(f"parleyd running, pid {daemon.pid}")
        self.sent("initialize {protocolVersion: 1}")
        self.received(_describe_agent(await client.initialize()))

    async def _first_daemon(self) -> None:
        self.step("1. Start the daemon, open a session")
        daemon = self._daemon()
        answer = answer_by_flag(self.live, allow_all, "the demo answers: allow once")
        async with ParleyClient(endpoint=daemon, permission_handler=answer) as client:
            await self._start(daemon, client)
            self.sent(f"session/new {{cwd: {self.scratch.workspace}}}")
            self.session_id = await client.new_session(self.scratch.workspace)
            self.received(f"sessionId {self.session_id}")

            self.step("2. Prompt: read a file (thinking, a read_file tool call, usage)")
            stop = await self._turn(client, PROMPTS[0])
            tools = self.live.transcript.tool_calls()
            self.check(
                stop == "end_turn"
                and any(c.name == "read_file" and c.status == "completed" for c in tools),
                "README.md was read by the read_file tool",
            )

            self.step("3. Prompt: write a file (the daemon asks permission first)")
            stop = await self._turn(client, PROMPTS[1])
            note = self.scratch.workspace / "NOTES.md"
            self.check(
                stop == "end_turn" and note.is_file() and NOTE_TEXT in note.read_text(),
                f'NOTES.md is on disk and says "{NOTE_TEXT}"',
            )

            self.step(
                f"4. Prompt: a long story, cancelled after {CANCEL_AFTER_SECONDS} s of streaming"
            )
            stop = await self._turn(client, PROMPTS[2], cancel_after=CANCEL_AFTER_SECONDS)
            self.check(stop == "cancelled", "the turn stopped with stopReason: cancelled")
            self.sent("close the daemon's stdin (it syncs the session log and exits)")
        self.received(f"parleyd exited with code {daemon.returncode}")

    async def _turn(
        self, client: ParleyClient, text: str, *, cancel_after: float | None = None
    ) -> str:
        self.sent(f"session/prompt {text!r}")
        self.live.user_prompt(text)
        cancelling: list[asyncio.Task[None]] = []

        async def cancel() -> None:
            await asyncio.sleep(cancel_after or 0)
            self.live.note(f"→ session/cancel  ({cancel_after} s after the story began)", "cyan")
            await client.cancel(self.session_id)

        def on_update(notification: SessionNotification) -> None:
            self.live.feed(notification)
            if (
                cancel_after is not None
                and not cancelling
                and isinstance(notification.update, AgentMessageChunk)
            ):
                cancelling.append(asyncio.create_task(cancel()))

        response = await client.run_with_updates(
            client.prompt(self.session_id, text), on_update, self.session_id
        )
        await asyncio.gather(*cancelling)
        self.live.finish(response.stop_reason)
        self.received(f"stopReason: {response.stop_reason}")
        return response.stop_reason

    async def _second_daemon(self) -> None:
        self.step("5. A new daemon: list the sessions, load this one back")
        daemon = self._daemon()
        async with ParleyClient(endpoint=daemon) as client:
            await self._start(daemon, client)
            self.sent(f"session/list {{cwd: {self.scratch.workspace}}}")
            sessions = await client.all_sessions(self.scratch.workspace)
            for info in sessions:
                self.received(f"{info.session_id}  {info.title!r}  updated {info.updated_at}")
            self.check(
                any(info.session_id == self.session_id for info in sessions),
                "the session is listed",
            )
            self.sent(f"session/load {self.session_id}")
            replay = Renderer.for_console(self.console)
            await client.run_with_updates(
                client.load_session(self.session_id, self.scratch.workspace),
                replay.feed,
                self.session_id,
            )
            replay.finish()
            total = sum(replay.transcript.counts.values())
            self.received(f"{{}}: the load is answered after {total} replayed updates")
        self.step("6. Live stream vs replay, per update kind")
        self._comparison(compare_replay(self.live.transcript, replay.transcript))

    def _comparison(self, rows: list[KindComparison]) -> None:
        self.console.print(
            Text(f"{'update kind':<22}{'live':>6}{'replayed':>10}  content", style="bold")
        )
        for row in rows:
            note = (
                f"  ({_COUNT_NOTES[row.kind]})"
                if row.live != row.replayed and row.kind in _COUNT_NOTES
                else ""
            )
            verdict = "same" if row.same else "DIFFERENT"
            self.console.print(
                Text(
                    f"{row.kind:<22}{row.live:>6}{row.replayed:>10}  {verdict}{note}",
                    style="" if row.same else "bold red",
                )
            )
        self.check(
            all(row.same for row in rows),
            "the replay carries the same text, thinking, tool calls and usage as the live stream",
        )

    def _summary(self) -> None:
        self.step("Summary")
        folder = self.scratch.home / "sessions" / self.session_id
        where = folder if folder.is_dir() else self.scratch.home
        show = [*parley_command(), "show", "--home", str(self.scratch.home), self.session_id]
        self.console.print(
            "3 prompts to the scripted model: a read, a write allowed once, "
            "a story cancelled midway.\n"
            f"The session survived a daemon restart and replayed as it streamed.\n"
            f"It lives in {where}"
        )
        # Not wrapped, and not read as markup: the command must paste into a shell whole.
        self.console.print(Text(f"See it again:  {shlex.join(show)}"), soft_wrap=True)
        self.console.print(f"The scratch directory {self.scratch.root} is yours to delete.")
        if self.problems:
            self.console.print(
                Text(
                    f"{len(self.problems)} check(s) failed: " + "; ".join(self.problems),
                    style="bold red",
                )
            )


def _describe_agent(response: InitializeResponse) -> str:
    info = response.agent_info
    capabilities = response.agent_capabilities
    parts = [f"{info.title or info.name} {info.version}" if info else "an unnamed agent"]
    parts.append(f"protocol v{response.protocol_version}")
    if capabilities is not None:
        if capabilities.load_session:
            parts.append("session/load")
        if capabilities.session_capabilities and capabilities.session_capabilities.list:
            parts.append("session/list")
        features = ((capabilities.meta or {}).get("parley") or {}).get("features")
        if features:
            parts.append("_meta.parley: " + ", ".join(features))
    return " · ".join(parts)


async def run_demo(console: Console, directory: Path | None = None) -> int:
    return await Demo(console, Scratch.create(directory)).run()
