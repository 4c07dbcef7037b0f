"""`parleyd` as an editor runs it: a thin shim in front of the user's one warm daemon.

The daemon takes over half a second to import. The shim imports the standard
library only, connects to the daemon already running for its environment over
a Unix socket, starting one if there is none, and copies bytes both ways until
the daemon closes the connection. It knows nothing of JSON-RPC: the daemon
tells the framing from the editor's first bytes, as it does on stdio.

`parleyd` with arguments is the daemon itself (`parleyd.main`), unchanged
(`--listen`, `--version`, ...); `parleyd --standalone [ARGS]` is the daemon of
one editor on stdio, as `parleyd` was before the shim.

**Where.** The runtime folder is `PARLEY_RUNTIME_DIR`, else platformdirs'
user runtime folder, found without importing it: `$XDG_RUNTIME_DIR/parley`,
else `/run/user/<uid>/parley` where that folder is the user's own and private,
else `runtime-<uid>/parley` in the temporary folder (on macOS,
`~/Library/Caches/TemporaryItems/parley`). It is created 0700 and refused
unless it is a directory of the user's own that no one else may enter: whoever
reaches the socket talks to the daemon as the user.

**Which daemon.** One per Parley version and environment, its socket, lock and
log named `parleyd-<version>-<fingerprint>.sock` (`.lock`, `.log`). The version
is in the name so that the daemon of an older Parley is never reused after an
upgrade: it is left to run out its idle time. The daemon reads its settings,
keys and config file once, when it starts, so an editor may only reach a daemon
that was started as it would have started one itself. The fingerprint, 16 hex
digits of a SHA-256, covers what decides that:

- the interpreter (`sys.executable`): another virtual environment or install is
  other code and other libraries, so it gets a daemon of its own;
- every `PARLEY_*` variable: Parley's own settings (provider, model, data
  folder, config path, log level, this idle time);
- every `*_API_KEY` and `*_BASE_URL`, and `OLLAMA_HOST`: a different key or
  provider URL must never reach a daemon started with another's;
- `PATH`, `HOME` and `VIRTUAL_ENV`: what the commands the model runs find, and
  where `~` and the default data and config folders are;
  `XDG_CONFIG_HOME` and `XDG_DATA_HOME` move those folders too;
- the proxy variables (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, in
  either case) and `SSL_CERT_FILE`, `SSL_CERT_DIR`: how the provider is reached;
- the config file's path, modification time and size (or its absence): an edited
  config gets a new daemon, while the old one serves its connections to their end.

Only the hash is written anywhere: a key never reaches a file name or the disk.
Other variables do not part daemons, so the commands the model runs see the
environment of the editor that started the daemon; `--standalone` is for an
editor whose own environment they must see.

**Starting one.** Under an flock on the `.lock` file, so that two shims starting
at once start one daemon: connect again (the other shim may have started it),
else start `python -m parleyd.main --listen unix:<socket>` in a session of its
own, in `/` (it holds no editor's folder), with the shim's environment, and wait
for it to write `ready` to the pipe given as `--ready-fd`. A socket left by a
daemon that died is the new daemon's to remove. The daemon logs to the `.log`
file, which also takes its stderr, so whatever stops a daemon from starting
(a bad config file, a bad flag) is in the log, and the shim shows it.
"""

# ruff: noqa: PTH100, PTH102, PTH103, PTH111, PTH116, PTH117, PTH118, PTH123
# (os.path, not pathlib: pathlib alone would cost the shim's start 20 ms of imports.)

from __future__ import annotations

# The C cores of `socket` and `threading`: those modules' own imports (enum,
# selectors, ...) would cost the shim's start over 20 ms, three times what all
# of the rest does. Python's own SIGINT handler stays, so `signal` is not needed.
import _socket
import _thread
import hashlib
import os
import stat
import sys
import time

from parleyd import __version__

# typing.TYPE_CHECKING without importing typing; mypy takes this name alike.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping, Sequence

READY_TIMEOUT = 30.0
DEFAULT_IDLE_EXIT = "600"
# One read's worth of the editor's or the daemon's bytes; a larger frame takes several.
_CHUNK = 64 * 1024
# Of the daemon's log, what a failed start shows: its last this many characters.
_LOG_TAIL = 2000
_STDIN, _STDOUT = 0, 1

_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
_FINGERPRINTED = frozenset(
    {
        "OLLAMA_HOST",
        "PATH",
        "HOME",
        "VIRTUAL_ENV",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        *_PROXIES,
        *(name.lower() for name in _PROXIES),
    }
)


class ShimError(Exception):
    """The editor cannot be connected to a daemon; the message says why."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class DaemonFiles:
    """The socket, lock and log of the daemon for one environment."""

    def __init__(self, folder: str, fingerprint: str) -> None:
        stem = os.path.join(folder, f"parleyd-{__version__}-{fingerprint}")
        self.socket = f"{stem}.sock"
        self.lock = f"{stem}.lock"
        self.log = f"{stem}.log"


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments:
        from parleyd.main import main as daemon

        daemon(arguments[1:] if arguments[0] == "--standalone" else arguments)
        return
    sys.exit(run_shim(_anchored(os.environ)))


# The variables that name a file or folder: the daemon runs in `/`, so a
# relative one is made absolute against the editor's folder, as the editor meant it.
_PATH_VARIABLES = ("PARLEY_HOME", "PARLEY_CONFIG")


def _anchored(environ: Mapping[str, str]) -> dict[str, str]:
    anchored = dict(environ)
    for name in _PATH_VARIABLES:
        if value := anchored.get(name):
            anchored[name] = os.path.abspath(os.path.expanduser(value))
    return anchored


def run_shim(environ: Mapping[str, str]) -> int:
    """Splice stdin and stdout to the environment's daemon; the exit status."""
    try:
        files = DaemonFiles(runtime_folder(environ), fingerprint(environ))
        connection = _connect(files.socket) or _connect_starting(files, environ)
        return splice(connection)
    except ShimError as exc:
        sys.stderr.write(f"parleyd: {exc}\n")
        return exc.status
    except KeyboardInterrupt:
        # The editor's SIGINT ends the shim at once, as its SIGTERM does; the
        # daemon sees the connection close.
        return 130


def runtime_folder(environ: Mapping[str, str]) -> str:
    """The folder of the daemons' sockets, created if need be, refused unless it is private."""
    folder = _runtime_folder_path(environ)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except FileExistsError:
        pass  # something that is not a directory: the check below names it
    except OSError as exc:
        raise ShimError(f"cannot create the runtime folder {folder}: {exc.strerror}", 2) from None
    try:
        found = os.lstat(folder)
    except OSError as exc:
        raise ShimError(f"cannot read the runtime folder {folder}: {exc.strerror}", 2) from None
    if problem := _not_private(found):
        raise ShimError(
            f"the runtime folder {folder} {problem}: it must be a directory of yours "
            "that only you can use (chmod 700), or set PARLEY_RUNTIME_DIR to one",
            2,
        )
    return folder


def _runtime_folder_path(environ: Mapping[str, str]) -> str:
    """PARLEY_RUNTIME_DIR, else platformdirs' `user_runtime_dir("parley")`."""
    if chosen := environ.get("PARLEY_RUNTIME_DIR"):
        # Absolute, as the daemon runs in / and binds the socket by this path.
        return os.path.abspath(os.path.expanduser(chosen))
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/TemporaryItems/parley")
    if (xdg := environ.get("XDG_RUNTIME_DIR", "")) and os.path.isabs(xdg):
        return os.path.join(xdg, "parley")
    per_user = f"/run/user/{os.getuid()}"
    try:
        if _not_private(os.lstat(per_user)) is None:
            return os.path.join(per_user, "parley")
    except OSError:
        pass  # no such folder: the temporary one's
    import tempfile  # only this fallback needs it

    fallback = os.path.join(tempfile.gettempdir(), f"runtime-{os.getuid()}")
    try:
        os.mkdir(fallback, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ShimError(f"cannot create the runtime folder {fallback}: {exc.strerror}", 2) from None
    # In a folder everyone may write to: whoever made it owns what is inside.
    if problem := _not_private(os.lstat(fallback)):
        raise ShimError(f"the runtime folder {fallback} {problem}; set PARLEY_RUNTIME_DIR", 2)
    return os.path.join(fallback, "parley")


def _not_private(found: os.stat_result) -> str | None:
    """What makes the folder `found` unfit to hold sockets only its owner may reach."""
    # lstat, not stat: a symlink in a shared folder such as /tmp could be turned
    # to another user's folder after the check.
    if stat.S_ISLNK(found.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(found.st_mode):
        return "is not a directory"
    if found.st_uid != os.getuid():
        return f"belongs to uid {found.st_uid}"
    if found.st_mode & 0o077:
        return f"has mode {stat.S_IMODE(found.st_mode):04o}"
    return None


def fingerprint(environ: Mapping[str, str]) -> str:
    """16 hex digits that differ for any two environments whose daemons would differ
    (the module's docstring says what counts)."""
    parts = [sys.executable, _config_identity(environ)]
    parts += sorted(f"{name}={value}" for name, value in environ.items() if _fingerprinted(name))
    # NUL can be in no variable nor path, so no two lists of parts join alike.
    joined = "\0".join(parts).encode("utf-8", "surrogateescape")
    return hashlib.sha256(joined).hexdigest()[:16]


def _fingerprinted(name: str) -> bool:
    return (
        name.startswith("PARLEY_")
        or name.endswith(("_API_KEY", "_BASE_URL"))
        or name in _FINGERPRINTED
    )


def _config_identity(environ: Mapping[str, str]) -> str:
    path = _config_file(environ)
    try:
        found = os.stat(path)
    except OSError:
        return f"{path} absent"
    return f"{path} {found.st_mtime_ns} {found.st_size}"


def _config_file(environ: Mapping[str, str]) -> str:
    """Where the daemon reads config.toml (parleyd.config.config_file, whose
    platformdirs folder this finds without importing platformdirs)."""
    if chosen := environ.get("PARLEY_CONFIG"):
        return os.path.expanduser(chosen)
    if (xdg := environ.get("XDG_CONFIG_HOME", "")) and os.path.isabs(xdg):
        folder = xdg
    elif sys.platform == "darwin":
        folder = os.path.expanduser("~/Library/Application Support")
    else:
        folder = os.path.expanduser("~/.config")
    return os.path.join(folder, "parley", "config.toml")


def _connect(path: str) -> _socket.socket | None:
    """A connection to the daemon listening at `path`, or None if none is."""
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        connection.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        # No socket, or one whose daemon died: starting a daemon replaces it.
        connection.close()
        return None
    except OSError as exc:
        connection.close()
        raise ShimError(f"cannot connect to {path}: {exc.strerror or exc}") from None
    return connection


def _connect_starting(files: DaemonFiles, environ: Mapping[str, str]) -> _socket.socket:
    """A connection to the daemon, started here unless another shim started it
    while this one waited for the lock."""
    import fcntl  # a warm start takes no lock

    lock = os.open(files.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _connect(files.socket) or _start_daemon(files, environ)
    finally:
        os.close(lock)  # which releases the flock


def _start_daemon(files: DaemonFiles, environ: Mapping[str, str]) -> _socket.socket:
    import subprocess  # only a cold start pays for importing it

    idle_exit = environ.get("PARLEY_DAEMON_IDLE_EXIT") or DEFAULT_IDLE_EXIT
    ready_read, ready_write = os.pipe()
    log = os.open(files.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    logged_before = os.fstat(log).st_size
    command = [
        *(sys.executable, "-m", "parleyd.main"),
        *("--listen", f"unix:{files.socket}"),
        *("--idle-exit", idle_exit),
        *("--ready-fd", str(ready_write)),
        *("--log-file", files.log),
    ]
    try:
        daemon = subprocess.Popen(
            command,
            pass_fds=(ready_write,),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd="/",
            env=environ,
        )
    except OSError as exc:
        os.close(ready_read)
        raise ShimError(f"cannot start the daemon {sys.executable}: {exc}") from None
    finally:
        os.close(ready_write)
        os.close(log)
    try:
        _wait_until_ready(ready_read, daemon, files, logged_before)
    finally:
        os.close(ready_read)
    connection = _connect(files.socket)
    if connection is None:
        raise ShimError(f"the daemon said it was ready, but {files.socket} takes no connection")
    return connection


def _wait_until_ready(
    ready: int, daemon: subprocess.Popen[bytes], files: DaemonFiles, logged_before: int
) -> None:
    import contextlib
    import select
    import subprocess

    deadline = time.monotonic() + READY_TIMEOUT
    said = b""
    while b"ready\n" not in said:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([ready], [], [], left)[0]:
            # It would come up with no shim waiting for it, or never.
            daemon.terminate()
            raise ShimError(
                f"the daemon was not ready after {READY_TIMEOUT:.0f} s"
                + _logged_since(files.log, logged_before)
            )
        chunk = os.read(ready, 64)
        if not chunk:
            # Its end closed the pipe: it is exiting, if it is not gone already.
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.wait(max(left, 1.0))
            status = "" if daemon.returncode is None else f" (exit status {daemon.returncode})"
            raise ShimError(
                f"the daemon stopped before it was ready{status}"
                + _logged_since(files.log, logged_before)
            )
        said += chunk


def _logged_since(path: str, offset: int) -> str:
    """The end of what the daemon logged from `offset` on, to close a message with."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace").strip()
    except OSError:
        text = ""
    if not text:
        return f"; its log {path} has nothing on it"
    return f"; its log {path} ends:\n{text[-_LOG_TAIL:]}"


def splice(connection: _socket.socket) -> int:
    """Stdin to the daemon and the daemon to stdout, byte for byte, until the
    daemon closes the connection; the exit status."""
    # Never joined: it ends with the process, blocked in a read of stdin or not.
    _thread.start_new_thread(_forward_stdin, (connection,))
    try:
        while data := connection.recv(_CHUNK):
            _write_all(_STDOUT, data)
    except BrokenPipeError:
        return 0  # the editor stopped reading: it is gone, and no one is left to tell
    except OSError as exc:
        sys.stderr.write(f"parleyd: lost the daemon: {exc.strerror or exc}\n")
        return 1
    return 0


def _forward_stdin(connection: _socket.socket) -> None:
    """The editor's bytes to the daemon; at their end, the daemon is told no more
    come, and answers what it has before it closes."""
    _copy_stdin(connection)
    try:
        connection.shutdown(_socket.SHUT_WR)
    except OSError:
        return  # the daemon is gone already


def _copy_stdin(connection: _socket.socket) -> None:
    try:
        while data := os.read(_STDIN, _CHUNK):
            connection.sendall(data)
    except OSError:
        # A stdin that cannot be read ends like one that closed. A daemon gone
        # is for the main thread to see: its read of the connection ends.
        return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


if __name__ == "__main__":
    main()
