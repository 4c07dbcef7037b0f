"""`parleyd` as editors run it: the shim that connects to the user's one warm
daemon, starting it when none is running. Every test drives the real shim as a
process, in a runtime folder of its own, and leaves no daemon behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import acp
import pytest
from acp import text_block

from parleyd import __version__
from tests.support.acp_client import RecordingClient
from tests.support.processes import needs_proc
from tests.support.raw_daemon import RawDaemon
from tests.support.runtime_folder import DEADLINE, Machine, private_machine

pytestmark = needs_proc

SHIM = (sys.executable, "-m", "parleyd.shim")
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    with private_machine(tmp_path / "home") as machine:
        yield machine


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Widget\n\nA widget that frobs.\n")
    return root


def daemon_pid(socket_path: Path) -> int:
    """The pid of the process listening on the socket, as the kernel says."""
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(str(socket_path))
        credentials = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid, _uid, _gid = struct.unpack("3i", credentials)
    return int(pid)


def run_shim(
    env: dict[str, str],
    frames: list[dict[str, Any]],
    *python_options: str,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """A shim sent `frames` as NDJSON and then the end of its stdin, run to its exit."""
    return subprocess.run(
        [sys.executable, *python_options, *SHIM[1:]],
        input=b"".join(json.dumps(frame).encode() + b"\n" for frame in frames),
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=DEADLINE,
        check=False,
    )


def initialize(env: dict[str, str], *python_options: str) -> subprocess.CompletedProcess[bytes]:
    """A shim run through one `initialize`, which it must have answered."""
    run = run_shim(env, [INITIALIZE], *python_options)
    assert run.returncode == 0, run.stderr.decode()
    (answer,) = (json.loads(line) for line in run.stdout.splitlines())
    assert answer["id"] == 1 and answer["result"]["protocolVersion"] == 1
    return run


def imported_modules(importtime: bytes) -> set[str]:
    """The modules a `python -X importtime` run imported, from its stderr."""
    lines = importtime.decode().splitlines()
    return {
        line.rsplit("|", 1)[1].strip()
        for line in lines
        if line.startswith("import time:") and not line.endswith("package")
    }


@pytest.mark.parametrize("xdg", [True, False], ids=["XDG_RUNTIME_DIR", "no XDG_RUNTIME_DIR"])
def test_the_runtime_folder_is_platformdirs_own(tmp_path: Path, xdg: bool) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PARLEY_RUNTIME_DIR", "XDG_RUNTIME_DIR")
    }
    env["TMPDIR"] = str(tmp_path)
    if xdg:
        (tmp_path / "xdg").mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(tmp_path / "xdg")
    both = (
        "import os, warnings, platformdirs; from parleyd.shim import runtime_folder;"
        "warnings.simplefilter('ignore');"
        "print(runtime_folder(os.environ)); print(platformdirs.user_runtime_dir('parley'))"
    )
    run = subprocess.run(
        [sys.executable, "-c", both], env=env, capture_output=True, text=True, check=True
    )
    ours, theirs = run.stdout.split()
    assert ours == theirs
    assert ours.startswith(str(tmp_path)) or Path(ours).parent == Path(f"/run/user/{os.getuid()}")


def test_the_shim_imports_the_standard_library_only(machine: Machine) -> None:
    env = machine.env()
    # What site and the venv's .pth files load into every interpreter is not the shim's.
    startup = imported_modules(
        subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"],
            env=env,
            capture_output=True,
            timeout=DEADLINE,
            check=True,
        ).stderr
    )
    # The first run starts the daemon, the second finds it: both paths, whole runs.
    for run in (initialize(env, "-X", "importtime"), initialize(env, "-X", "importtime")):
        modules = imported_modules(run.stderr) - startup
        ours = {name for name in modules if name.partition(".")[0] == "parleyd"}
        # The package, for its version; the shim itself runs as __main__.
        assert ours == {"parleyd"}
        foreign = {
            name for name in modules - ours if name.partition(".")[0] not in sys.stdlib_module_names
        }
        assert not foreign
        assert "asyncio" not in modules
    assert len(machine.daemons()) == 1


async def test_a_prompt_runs_through_the_shim(machine: Machine, workspace: Path) -> None:
    client = RecordingClient()
    async with acp.spawn_agent_process(
        client, *SHIM, env=machine.env(), observers=[client.observe]
    ) as (connection, _):
        init = await connection.initialize(protocol_version=1)
        assert init.agent_capabilities.load_session is True
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        response = await connection.prompt(
            session_id=session.session_id, prompt=[text_block("Summarize README.md")]
        )
    assert response.stop_reason == "end_turn"
    assert 'heading:** "Widget"' in client.text()
    assert (await asyncio.to_thread(machine.daemons)) != []


@pytest.mark.parametrize("framing", ["ndjson", "content-length"])
async def test_either_framing_passes_through(
    machine: Machine, workspace: Path, framing: str
) -> None:
    shim = await asyncio.create_subprocess_exec(
        *SHIM, env=machine.env(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert shim.stdin is not None and shim.stdout is not None
    daemon = RawDaemon(shim.stdout, shim.stdin, framing, shim)
    assert (await daemon.initialize())["result"]["protocolVersion"] == 1
    session_id = await daemon.new_session(workspace)
    listed = await daemon.request("session/list", {})
    assert "result" in listed, listed
    shim.stdin.close()
    assert await asyncio.wait_for(shim.wait(), DEADLINE) == 0
    assert session_id.startswith("sess_")


def test_later_shims_reuse_the_daemon(machine: Machine) -> None:
    env = machine.env()
    initialize(env)
    (socket_path,) = machine.sockets()
    first = daemon_pid(socket_path)
    # One editor still connected while another starts, then one after both left.
    with subprocess.Popen(
        SHIM, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as connected:
        assert connected.stdin is not None and connected.stdout is not None
        connected.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
        connected.stdin.flush()
        assert json.loads(connected.stdout.readline())["result"]["protocolVersion"] == 1
        initialize(env)
        connected.stdin.close()
        assert connected.wait(DEADLINE) == 0
    initialize(env)
    assert machine.sockets() == [socket_path]
    assert daemon_pid(socket_path) == first
    assert machine.daemons() == [first]


@pytest.mark.parametrize(
    "differs",
    [
        {"PARLEY_HOME": "other-home"},
        {"OPENAI_API_KEY": "sk-shim-test-key-0123456789"},
        {"PARLEY_MODEL": "another-model"},
    ],
    ids=["home", "api-key", "setting"],
)
def test_another_environment_gets_its_own_daemon(
    machine: Machine, tmp_path: Path, differs: dict[str, str]
) -> None:
    settings = {
        name: str(tmp_path / value) if name == "PARLEY_HOME" else value
        for name, value in differs.items()
    }
    initialize(machine.env())
    initialize(machine.env(**settings))
    sockets = machine.sockets()
    assert len(sockets) == 2
    assert len({daemon_pid(path) for path in sockets}) == 2
    assert len(machine.daemons()) == 2
    # A key is told apart by its hash alone: it is in no file name and in no file.
    for value in settings.values():
        assert all(value not in path.name for path in machine.runtime.iterdir())
        assert value not in machine.logged()


def test_a_relative_home_is_the_editors_folder_not_the_daemons(
    machine: Machine, tmp_path: Path, workspace: Path
) -> None:
    new = {"cwd": str(workspace), "mcpServers": []}
    frames = [INITIALIZE, {"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": new}]
    run = run_shim(machine.env(PARLEY_HOME="relative-home"), frames, cwd=tmp_path)
    assert run.returncode == 0, run.stderr.decode()
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    session_id = next(a["result"]["sessionId"] for a in answers if a.get("id") == 2)
    assert (tmp_path / "relative-home" / "sessions" / session_id).is_dir()


def test_an_edited_config_file_gets_a_new_daemon(machine: Machine, tmp_path: Path) -> None:
    config_home = tmp_path / "config"
    config = config_home / "parley" / "config.toml"
    config.parent.mkdir(parents=True)
    env = machine.env(XDG_CONFIG_HOME=str(config_home))
    del env["PARLEY_CONFIG"]  # the platform's place for it, then
    config.write_text('model = "first-model"\n')
    initialize(env)
    config.write_text('model = "second-model, longer"\n')
    initialize(env)
    assert len({daemon_pid(path) for path in machine.sockets()}) == 2


def test_racing_cold_starts_start_one_daemon(machine: Machine) -> None:
    env = machine.env()
    shims = [
        subprocess.Popen(
            SHIM, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    for shim in shims:
        out, errors = shim.communicate(json.dumps(INITIALIZE).encode() + b"\n", DEADLINE)
        assert shim.returncode == 0, errors.decode()
        assert json.loads(out)["result"]["protocolVersion"] == 1
    assert len(machine.daemons()) == 1
    # Each daemon that ever started announced itself in the log: one did.
    assert machine.logged().count("parleyd listening on") == 1


def test_the_daemon_of_another_parley_version_is_not_reused(machine: Machine) -> None:
    env = machine.env()
    initialize(env)  # the name this version's shim gives its daemon
    (ours,) = machine.sockets()
    os.kill(daemon_pid(ours), signal.SIGKILL)
    machine.wait_for_no_daemons()
    ours.unlink()
    # An older Parley's daemon for the same environment, listening and mute.
    older = ours.with_name(ours.name.replace(f"-{__version__}-", "-0.0.1-"))
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(older))
        listener.listen()
        listener.setblocking(False)
        initialize(env)
        with pytest.raises(BlockingIOError):
            listener.accept()  # no shim knocked
    assert ours in machine.sockets()


def test_a_dead_daemons_socket_is_replaced(machine: Machine) -> None:
    env = machine.env()
    initialize(env)
    (socket_path,) = machine.sockets()
    dead = daemon_pid(socket_path)
    os.kill(dead, signal.SIGKILL)
    machine.wait_for_no_daemons()
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(str(socket_path))  # the socket file is left, and nothing listens
    initialize(env)
    assert machine.sockets() == [socket_path]
    assert daemon_pid(socket_path) not in (dead, 0)


async def test_a_killed_shim_leaves_the_daemon_serving(machine: Machine, workspace: Path) -> None:
    client = RecordingClient()
    async with acp.spawn_agent_process(client, *SHIM, env=machine.env()) as (connection, shim):
        await connection.initialize(protocol_version=1)
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        turn = asyncio.ensure_future(
            connection.prompt(
                session_id=session.session_id, prompt=[text_block("Tell me a long story")]
            )
        )
        await client.wait_for(lambda update: update.session_update == "agent_message_chunk")
        (socket_path,) = await asyncio.to_thread(machine.sockets)
        daemon = await asyncio.to_thread(daemon_pid, socket_path)
        shim.kill()
        await shim.wait()
        turn.cancel()
    assert await asyncio.to_thread(machine.daemons) == [daemon]
    again = RecordingClient()
    async with acp.spawn_agent_process(again, *SHIM, env=machine.env()) as (connection, _):
        await connection.initialize(protocol_version=1)
        listed = await connection.list_sessions()
        assert session.session_id in [listed_one.session_id for listed_one in listed.sessions]
        fresh = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        response = await connection.prompt(
            session_id=fresh.session_id, prompt=[text_block("Summarize README.md")]
        )
        assert response.stop_reason == "end_turn"
    assert await asyncio.to_thread(daemon_pid, socket_path) == daemon


def test_an_idle_daemon_exits(machine: Machine) -> None:
    initialize(machine.env(PARLEY_DAEMON_IDLE_EXIT="1"))
    assert len(machine.daemons()) == 1
    machine.wait_for_no_daemons()
    assert machine.sockets() == []


@pytest.mark.parametrize("unfit", ["mode", "symlink", "file"])
def test_a_runtime_folder_others_may_use_is_refused(
    machine: Machine, tmp_path: Path, unfit: str
) -> None:
    folder = machine.runtime / "shared"
    if unfit == "mode":
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)
        expected = "has mode 0755"
    elif unfit == "symlink":
        private = machine.runtime / "private"
        private.mkdir(mode=0o700)
        folder.symlink_to(private)
        expected = "is a symlink"
    else:
        folder.write_text("not a folder")
        expected = "is not a directory"
    run = run_shim(machine.env(PARLEY_RUNTIME_DIR=str(folder)), [INITIALIZE])
    assert run.returncode == 2
    assert run.stdout == b""
    (line,) = run.stderr.decode().splitlines()
    assert line.startswith(f"parleyd: the runtime folder {folder} {expected}:")
    assert "PARLEY_RUNTIME_DIR" in line
    assert machine.daemons() == []


def test_a_daemon_that_cannot_start_is_explained(machine: Machine, tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("model = \n")
    run = run_shim(machine.env(PARLEY_CONFIG=str(config)), [INITIALIZE])
    assert run.returncode == 1
    assert run.stdout == b""
    errors = run.stderr.decode()
    assert errors.startswith("parleyd: the daemon stopped before it was ready (exit status 2)")
    # The daemon's own words, from its log.
    assert str(config) in errors
    assert machine.daemons() == []


def test_arguments_run_the_daemon_itself(machine: Machine) -> None:
    version = subprocess.run(
        [*SHIM, "--version"], capture_output=True, text=True, timeout=DEADLINE, check=True
    )
    assert version.stdout.startswith("parleyd ")
    env = machine.env()
    standalone = subprocess.run(
        [*SHIM, "--standalone"],
        input=json.dumps(INITIALIZE) + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert standalone.returncode == 0, standalone.stderr
    assert json.loads(standalone.stdout)["result"]["protocolVersion"] == 1
    # On its own stdio: no daemon started, no socket made.
    assert machine.sockets() == []
    assert machine.daemons() == []
