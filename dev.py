#!/usr/bin/env python3
"""Set up and run Parley from a fresh checkout with nothing but Python 3.11+ and pip.

    python3 dev.py demo     # the offline demo, end to end
    python3 dev.py test     # lint, type check and the whole test suite
    python3 dev.py bench    # the benchmarks (figures and ratios, no assertions)

The first run creates `.venv/` and installs the three workspace members editable
with their dependencies and the `dev` dependency group of pyproject.toml. Later
runs reinstall only when a pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
MEMBERS = ("protocol", "daemon", "clients")
STAMP = VENV / ".parley-installed"


def venv_bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def manifest_digest() -> str:
    digest = hashlib.sha256()
    for path in [ROOT / "pyproject.toml", *(ROOT / m / "pyproject.toml" for m in MEMBERS)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    # Checked before tomllib (3.11+) is imported, so older Pythons get a sentence.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"Parley needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    import tomllib

    wanted = manifest_digest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not venv_bin("python").exists():
        print("dev.py: creating .venv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    dev_group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    editable = [arg for member in MEMBERS for arg in ("-e", str(ROOT / member))]
    print("dev.py: installing Parley and its dev dependencies into .venv", file=sys.stderr)
    pip = [str(venv_bin("python")), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *editable, *dev_group], check=True)
    STAMP.write_text(wanted)


def run(*argv: str | Path) -> int:
    return subprocess.call([str(a) for a in argv], cwd=ROOT)


def test(extra: list[str]) -> int:
    checks: list[list[str | Path]] = [
        [venv_bin("ruff"), "format", "--check", "."],
        [venv_bin("ruff"), "check", "."],
        [venv_bin("mypy"), "--config-file", "pyproject.toml"],
    ]
    for check in checks:
        if code := run(*check):
            return code
    return run(venv_bin("python"), "-m", "pytest", *extra)


def main() -> int:
    command, extra = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if command not in {"demo", "test", "bench"}:
        print(__doc__)
        return 0 if command in {"help", "-h", "--help"} else 2
    ensure_environment()
    if command == "demo":
        return run(venv_bin("parley"), "demo", *extra)
    if command == "test":
        return test(extra)
    return run(venv_bin("python"), ROOT / "bench" / "run.py", *extra)


if __name__ == "__main__":
    sys.exit(main())
