"""`python -m parleyd.offline [--port N] [--pace X]`: serve the scripted offline model.

Prints the base URL (one line on stdout, for scripts and the benchmark to read) and
serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from parleyd.offline.model_server import ScriptedModelServer
from parleyd.offline.script import MODEL_ID


async def _serve(port: int, pace: float) -> None:
    async with ScriptedModelServer(port=port, pace=pace) as server:
        # This tool's stdout is for scripts that want the URL (it is not a
        # protocol stream); the label goes to stderr.
        sys.stdout.write(f"{server.base_url}\n")
        sys.stdout.flush()
        sys.stderr.write(
            f"Parley's scripted offline model ({MODEL_ID}), not a real LLM; Ctrl-C stops it.\n"
        )
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m parleyd.offline",
        description="Serve Parley's scripted offline model in the OpenAI Chat Completions "
        "format on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free)")
    parser.add_argument(
        "--pace",
        type=float,
        default=1.0,
        help="multiply the script's delays between deltas (0: no delays)",
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.pace))


if __name__ == "__main__":
    main()
