#!/usr/bin/env python3
"""Set up and run Parley from a fresh checkout with nothing but Python 3.11+ and pip.

    python3 dev.py demo     # the offline demo, end to end
    python3 dev.py test     # lint, type check and the whole test suite
    python3 dev.py bench    # the benchmarks (figures and ratios, no assertions)
    python3 dev.py lock     # re-resolve constraints.txt to the newest allowed versions

The first run creates `.venv/` and installs the three workspace members editable
with their dependencies and the `dev` dependency group of pyproject.toml, at the
exact versions of constraints.txt. Later runs reinstall only when a
pyproject.toml or constraints.txt changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
MEMBERS = ("protocol", "daemon", "clients")
STAMP = VENV / ".parley-installed"
CONSTRAINTS = ROOT / "constraints.txt"
TS_TESTS = ROOT / "tests" / "ts"
TS_STAMP = TS_TESTS / "node_modules" / ".parley-installed"
LOCK_HEADER = """\
# The exact versions `python3 dev.py` installs: every third-party distribution that
# the workspace members and the dev dependency group need. Written by
# `python3 dev.py lock`; edit the ranges in the pyproject.toml files instead.
"""


def venv_bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def manifest_digest() -> str:
    digest = hashlib.sha256()
    manifests = [ROOT / "pyproject.toml", *(ROOT / m / "pyproject.toml" for m in MEMBERS)]
    for path in [*manifests, CONSTRAINTS]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def requirements() -> list[str]:
    """pip arguments for the three members, editable, and the dev dependency group."""
    import tomllib  # 3.11+, so imported only after main() checked the version

    dev_group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    return [*(arg for member in MEMBERS for arg in ("-e", str(ROOT / member))), *dev_group]


def pip_install(*args: str) -> None:
    """`pip install` into .venv, creating it first if need be."""
    if not venv_bin("python").exists():
        print("dev.py: creating .venv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    command = [str(venv_bin("python")), "-m", "pip", "install", "--quiet", *args]
    subprocess.run(command, check=True)


def ensure_environment() -> None:
    wanted = manifest_digest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("dev.py: installing Parley and its dev dependencies into .venv", file=sys.stderr)
    pip_install("-c", str(CONSTRAINTS), *requirements())
    STAMP.write_text(wanted)


def ensure_ts_sdk() -> None:
    """The ACP TypeScript SDK that tests/ts/client.mjs drives the daemon with, at the
    versions of its package-lock.json; reinstalled only when that lockfile changed."""
    npm = shutil.which("npm")
    if npm is None:
        print("dev.py: npm not found; the TypeScript SDK tests will be skipped", file=sys.stderr)
        return
    wanted = hashlib.sha256((TS_TESTS / "package-lock.json").read_bytes()).hexdigest()
    if TS_STAMP.exists() and TS_STAMP.read_text() == wanted:
        return
    print("dev.py: installing the ACP TypeScript SDK into tests/ts", file=sys.stderr)
    command = [npm, "ci", "--quiet", "--no-audit", "--no-fund"]
    subprocess.run(command, cwd=TS_TESTS, check=True)
    TS_STAMP.write_text(wanted)


def lock() -> int:
    """Resolve the requirements afresh, ignoring what .venv holds, and pin the result."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        pip_install("--dry-run", "--ignore-installed", "--report", str(report), *requirements())
        resolved = json.loads(report.read_text())["install"]
    pins = sorted(
        (
            f"{item['metadata']['name']}=={item['metadata']['version']}"
            for item in resolved
            # The members are local directories; constraints pin only what an index serves.
            if "dir_info" not in item["download_info"]
        ),
        key=str.lower,
    )
    CONSTRAINTS.write_text(LOCK_HEADER + "".join(f"{pin}\n" for pin in pins))
    print(f"dev.py: pinned {len(pins)} distributions in {CONSTRAINTS.name}", file=sys.stderr)
    return 0


def run(*argv: str | Path) -> int:
    return subprocess.call([str(a) for a in argv], cwd=ROOT)


def test(extra: list[str]) -> int:
    checks: list[list[str | Path]] = [
        [venv_bin("ruff"), "format", "--check", "."],
        [venv_bin("ruff"), "check", "."],
    ]
    for check in checks:
        if code := run(*check):
            return code
    # mypy takes one core for half a minute: it runs beside the tests, and
    # reports after them.
    mypy = subprocess.Popen(
        [venv_bin("mypy"), "--config-file", "pyproject.toml"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # One worker per core: most tests wait on a daemon, so they overlap well. A
    # worker that runs out takes tests still queued for the other (worksteal),
    # so neither sits idle while the other ends on a few long ones.
    tests = run(venv_bin("python"), "-m", "pytest", "-n", "auto", "--dist", "worksteal", *extra)
    typed, _ = mypy.communicate()
    print(typed, end="", flush=True)
    return mypy.returncode or tests


def main() -> int:
    command, extra = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if command not in {"demo", "test", "bench", "lock"}:
        print(__doc__)
        return 0 if command in {"help", "-h", "--help"} else 2
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"Parley needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if command == "lock":
        return lock()
    ensure_environment()
    if command == "demo":
        return run(venv_bin("parley"), "demo", *extra)
    if command == "test":
        ensure_ts_sdk()
        return test(extra)
    return run(venv_bin("python"), ROOT / "bench" / "run.py", *extra)


if __name__ == "__main__":
    sys.exit(main())
