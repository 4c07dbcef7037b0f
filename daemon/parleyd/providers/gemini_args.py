"""A function call's arguments as Vertex AI streams them, put back together.

With streamed function-call arguments Vertex AI sends no `args` object but
values at JSON paths (RFC 9535, written as `$.city`, `$.stops[1].name` or
`$['odd key']`), a string in as many pieces as it likes, and closes the call
with an empty `functionCall`.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\[\"((?:[^\"\\]|\\.)*)\"\]")
_ESCAPE = re.compile(r"\\(.)")

Step = str | int


class StreamedArguments:
    """The values a call's arguments streamed, by path, in arrival order."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def set(self, path: str, value: Any) -> None:
        self._values[path] = value

    def extend(self, path: str, text: str) -> None:
        """The next piece of the string at `path`."""
        before = self._values.get(path)
        self._values[path] = (before if isinstance(before, str) else "") + text

    def value(self) -> dict[str, Any]:
        """The arguments object; ValueError for a path that cannot be read or
        that does not fit the values before it."""
        root: dict[str, Any] = {}
        for path, value in self._values.items():
            _assign(root, _steps(path), value)
        return root


def _steps(path: str) -> list[Step]:
    if not path.startswith("$"):
        raise ValueError(f"{path!r} is not a JSON path")
    steps: list[Step] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(f"cannot read the JSON path {path!r}")
        name, index, single, double = match.groups()
        if index is not None:
            steps.append(int(index))
        elif name is not None:
            steps.append(name)
        else:
            steps.append(_ESCAPE.sub(r"\1", single if single is not None else double))
        position = match.end()
    if not steps:
        raise ValueError("an argument at the path '$' names no argument")
    return steps


def _assign(root: dict[str, Any], steps: list[Step], value: Any) -> None:
    node: Any = root
    for step, following in itertools.pairwise(steps):
        node = _child(node, step, [] if isinstance(following, int) else {})
    _child(node, steps[-1], value, replace=True)


def _child(node: Any, step: Step, value: Any, *, replace: bool = False) -> Any:
    """`node[step]`, set to `value` if it is not there yet (or if `replace`)."""
    if isinstance(step, int) and isinstance(node, list):
        node.extend([None] * (step + 1 - len(node)))
        if replace or node[step] is None:
            node[step] = value
        return node[step]
    if isinstance(step, str) and isinstance(node, dict):
        if replace or step not in node:
            node[step] = value
        return node[step]
    raise ValueError(f"the path step {step!r} does not fit a {type(node).__name__}")
