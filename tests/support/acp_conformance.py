"""Check frames the agent sends against the official ACP v1 JSON Schema.

    conformance = AcpConformance.load()          # cached; one per process
    conformance.check_agent_frame(frame)          # notifications, agent->client requests
    conformance.check_agent_frame(frame, "session/prompt")  # a response: name the request

The schema is ACP's own, vendored in `tests/fixtures/acp/schema.json`; a
method only the unstable schema defines (`session/status`, ...) is checked
against `schema.unstable.json` (`AcpConformance.for_method`). The def for a
message is found by the schema's own `x-method` / `x-side` annotations
(`x-side` names the side that *handles* the message), never by a hand-kept
table. Extension methods (`_...`) are free-form in ACP and skipped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support.fixtures import ACP

SCHEMA = ACP / "schema.json"
UNSTABLE_SCHEMA = ACP / "schema.unstable.json"
SCHEMA_URI = "urn:acp:v1:schema"

Kind = Literal["Request", "Response", "Notification"]
_KINDS: tuple[Kind, ...] = ("Request", "Response", "Notification")

_INT_FORMATS = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    for name, (low, high) in _INT_FORMATS.items():

        def check(value: object, low: int = low, high: int = high) -> bool:
            if isinstance(value, bool) or not isinstance(value, int):
                return True  # formats only constrain integers
            return low <= value <= high

        checker.checks(name)(check)
    return checker


def _narrow(error: ValidationError) -> ValidationError:
    """For a failed tagged `oneOf` / `anyOf`, report the branch the tag selected.

    Each branch of ACP's tagged unions pins the tag with `const`; the branches
    whose errors include no `const` failure are those the tag matched.
    """
    while error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        tagged = [
            errs for errs in branches.values() if not any(e.validator == "const" for e in errs)
        ]
        if len(tagged) != 1:
            break
        picked = best_match(tagged[0])
        if picked is None:
            break
        error = picked
    return error


class AcpConformance:
    """The ACP schema, indexed by (method, handling side, kind) -> $def name."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self.defs: Mapping[str, Any] = schema["$defs"]
        resource = Resource.from_contents(dict(schema), default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(SCHEMA_URI, resource)
        self._format_checker = _format_checker()
        self._validators: dict[str, Draft202012Validator] = {}
        self.by_method: dict[tuple[str, str, Kind], str] = {}
        for name, definition in self.defs.items():
            method, side = definition.get("x-method"), definition.get("x-side")
            if method is None or side is None:
                continue
            kind: Kind | None = next((k for k in _KINDS if name.endswith(k)), None)
            if kind is None:
                raise ValueError(f"cannot tell the message kind of $def {name}")
            self.by_method[(method, side, kind)] = name

    @classmethod
    @functools.cache
    def load(cls, schema: Path = SCHEMA) -> AcpConformance:
        return cls(json.loads(schema.read_text(encoding="utf-8")))

    @classmethod
    def for_method(cls, method: str | None) -> AcpConformance:
        """The stable schema, or the unstable one for a method only it defines
        (Parley serves those behind the capability that schema gives them)."""
        stable = cls.load()
        if method is None or any(key[0] == method for key in stable.by_method):
            return stable
        return cls.load(UNSTABLE_SCHEMA)

    # -- lookups ---------------------------------------------------------------

    def def_for(self, method: str, kind: Kind, sides: tuple[str, ...]) -> str:
        for side in sides:
            name = self.by_method.get((method, side, kind))
            if name is not None:
                return name
        raise AssertionError(
            f"ACP schema has no {kind.lower()} `{method}` handled by {' or '.join(sides)}"
        )

    def validator(self, def_name: str) -> Draft202012Validator:
        if def_name not in self.defs:
            raise KeyError(f"ACP schema has no $def {def_name}")
        found = self._validators.get(def_name)
        if found is None:
            found = Draft202012Validator(
                {"$ref": f"{SCHEMA_URI}#/$defs/{def_name}"},
                registry=self._registry,
                format_checker=self._format_checker,
            )
            self._validators[def_name] = found
        return found

    def check(self, def_name: str, instance: Any, *, frame: Any = None) -> None:
        """Validate `instance` against `$defs/<def_name>`; AssertionError if it fails."""
        error = best_match(self.validator(def_name).iter_errors(instance))
        if error is not None:
            error = _narrow(error)
            shown = json.dumps(frame if frame is not None else instance, indent=2, default=str)
            where = "/".join(map(str, error.absolute_schema_path))
            raise AssertionError(
                f"not a valid ACP {def_name}: {error.message}\n"
                f"  at {error.json_path} (schema path: {where})\n"
                f"frame:\n{shown}"
            )

    # -- frames ----------------------------------------------------------------

    def check_agent_frame(self, frame: dict[str, Any], request_method: str | None = None) -> None:
        """Validate one JSON-RPC message the agent sent.

        - notification (`method`, no `id`): params against the notification def
          the client handles (e.g. session/update -> SessionNotification);
        - request (`method` and `id`): params against the request def the client
          handles (e.g. session/request_permission -> RequestPermissionRequest);
        - response (no `method`): needs `request_method`, the method of the client
          request it answers; `result` against that method's response def the
          agent handles, or `error` against the schema's `Error`.
        """
        self._check_envelope(frame)
        method = frame.get("method")
        if method is not None:
            if method.startswith("_"):
                return  # ExtRequest / ExtNotification: free-form by design
            params = frame.get("params")
            if "id" in frame:
                name = self.def_for(method, "Request", ("client",))
            else:
                name = self.def_for(method, "Notification", ("client", "protocol"))
            self.check(name, params, frame=frame)
            return

        if "error" in frame:
            self.check("Error", frame["error"], frame=frame)
            return
        if request_method is None:
            raise AssertionError(
                f"a response needs the method of the request it answers\nframe: {frame}"
            )
        if request_method.startswith("_"):
            return
        name = self.def_for(request_method, "Response", ("agent",))
        self.check(name, frame["result"], frame=frame)

    def _check_envelope(self, frame: Any) -> None:
        problems: list[str] = []
        if not isinstance(frame, dict):
            problems.append("a JSON-RPC message must be an object")
        else:
            if frame.get("jsonrpc") != "2.0":
                problems.append('"jsonrpc" must be "2.0"')
            if "method" in frame:
                if not isinstance(frame["method"], str):
                    problems.append('"method" must be a string')
                if "result" in frame or "error" in frame:
                    problems.append("a request or notification has no result or error")
                if "id" in frame:
                    self._check_id(frame["id"], problems)
            else:
                if ("result" in frame) == ("error" in frame):
                    problems.append("a response has exactly one of result and error")
                if "id" not in frame:
                    problems.append('a response must have an "id"')
                else:
                    self._check_id(frame["id"], problems)
        if problems:
            raise AssertionError(
                "not a valid JSON-RPC 2.0 message: " + "; ".join(problems) + f"\nframe: {frame}"
            )

    def _check_id(self, value: Any, problems: list[str]) -> None:
        if value is not None:
            error = best_match(self.validator("RequestId").iter_errors(value))
            if error is not None:
                problems.append(f'"id": {error.message}')


class FrameChecker:
    """One client connection's view of the wire: it remembers the method of
    each request the client sent, so each answer the daemon sends can be
    checked against that method's response schema, and checks every frame the
    daemon sends on arrival."""

    def __init__(self, *, unstable: bool = False) -> None:
        self._methods: dict[Any, str] = {}
        self.checked = 0
        # A client that advertised unstable capabilities (child sessions) is
        # sent what only the unstable schema defines.
        self.unstable = unstable

    def sent(self, frame: Mapping[str, Any]) -> None:
        if "method" in frame and "id" in frame:
            self._methods[frame["id"]] = frame["method"]

    def received(self, frame: dict[str, Any]) -> None:
        request_method = None if "method" in frame else self._methods.pop(frame.get("id"), None)
        conformance = (
            AcpConformance.load(UNSTABLE_SCHEMA)
            if self.unstable
            else AcpConformance.for_method(frame.get("method", request_method))
        )
        conformance.check_agent_frame(frame, request_method)
        self.checked += 1

    def observe(self, direction: str, frame: bytes) -> None:
        """A `parley_client` frame observer: raw frames in both directions."""
        message = json.loads(frame)
        if direction == "sent":
            self.sent(message)
        else:
            self.received(message)
