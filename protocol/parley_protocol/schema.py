"""JSON Schema export of Parley's wire types, for client authors.

    python -m parley_protocol.schema          # write protocol/schema/parley-protocol.schema.json
    python -m parley_protocol.schema --check  # exit 1 if the checked-in file is stale

One JSON Schema 2020-12 document: every public Struct (ACP v1 types, Parley's
extensions, JSON-RPC envelopes) and the tagged unions under `$defs`, built with
`msgspec.json.schema_components`. Output is deterministic (sorted keys, two-space
indent, trailing newline), so the check is a plain text comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import msgspec

from . import PROTOCOL_VERSION, acp, jsonrpc, parley

DEFAULT_OUTPUT: Final = (
    Path(__file__).resolve().parent.parent / "schema" / "parley-protocol.schema.json"
)

_REF_TEMPLATE: Final = "#/$defs/{name}"
# Field-less bases, and `Incoming` (a decode helper whose `msgspec.Raw` members have
# no schema: it is any of Request / Notification / Response / ErrorResponse).
_SKIP: Final = frozenset({acp.AcpStruct, parley.ParleyStruct, jsonrpc.Incoming})
_UNIONS: Final[dict[str, Any]] = {
    "ContentBlock": acp.ContentBlock,
    "ToolCallContent": acp.ToolCallContent,
    "SessionUpdate": acp.SessionUpdate,
    "RequestPermissionOutcome": acp.RequestPermissionOutcome,
}


def _public_structs(module: ModuleType) -> list[type[msgspec.Struct]]:
    names: Sequence[str] = getattr(module, "__all__", None) or [
        n for n in vars(module) if not n.startswith("_")
    ]
    found: list[type[msgspec.Struct]] = []
    for name in names:
        obj = getattr(module, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, msgspec.Struct)
            and obj not in _SKIP
            and obj.__name__ == name  # skip aliases such as AuthMethod
        ):
            found.append(obj)
    return found


def _methods() -> dict[str, str]:
    """Struct name -> the JSON-RPC method it is the params or result of."""
    out: dict[str, str] = {}
    for table in (acp.AGENT_REQUESTS, acp.CLIENT_REQUESTS):
        for method, (params, result) in table.items():
            out[params.__name__] = method
            out[result.__name__] = method
    for notes in (acp.AGENT_NOTIFICATIONS, acp.CLIENT_NOTIFICATIONS):
        for method, params_type in notes.items():
            out[params_type.__name__] = method
    for method, params_type in (
        (parley.TOOL_CALL_CANCEL, parley.ToolCallCancelParams),
        (parley.SESSION_PAUSE, parley.SessionPauseParams),
        (parley.SESSION_PAUSE, parley.SessionPauseResult),
        (parley.SESSION_RESUME, parley.SessionResumeParams),
        (parley.SESSION_RESUME, parley.SessionResumeResult),
        (parley.SESSION_INJECT, parley.SessionInjectParams),
        (parley.SESSION_INJECT, parley.SessionInjectResult),
        (parley.SESSION_QUEUE_LIST, parley.SessionQueueListParams),
        (parley.SESSION_QUEUE_LIST, parley.SessionQueueListResult),
        (parley.SESSION_QUEUE_REPLACE, parley.SessionQueueReplaceParams),
        (parley.SESSION_QUEUE_REPLACE, parley.SessionQueueReplaceResult),
        (parley.SESSION_QUEUE_WITHDRAW, parley.SessionQueueWithdrawParams),
        (parley.SESSION_QUEUE_WITHDRAW, parley.SessionQueueWithdrawResult),
        (parley.SESSION_SET_BUDGET, parley.SetBudgetParams),
        (parley.SESSION_SET_BUDGET, parley.SetBudgetResult),
        (parley.SESSION_FORK, parley.SessionForkParams),
        (parley.SESSION_FORK, parley.SessionForkResult),
    ):
        out[params_type.__name__] = method
    return out


def build_schema() -> dict[str, Any]:
    """The whole schema document, as a dict."""
    structs: list[Any] = []
    for module in (acp, parley, jsonrpc):
        for struct in _public_structs(module):
            if struct not in structs:
                structs.append(struct)
    types: list[Any] = [*structs, jsonrpc.ErrorCode, *_UNIONS.values()]
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF_TEMPLATE)
    defs: dict[str, Any] = dict(components)
    for name, union_schema in zip(_UNIONS, schemas[-len(_UNIONS) :], strict=True):
        defs[name] = union_schema

    # msgspec cannot express ACP's untagged `TextResourceContents | BlobResourceContents`,
    # so the Python type is one Struct with both members optional (see content.py).
    # The wire shape is the union: say so in the schema.
    defs["EmbeddedResourceResource"] = {
        "title": "EmbeddedResourceResource",
        "description": "Text contents (has `text`) or blob contents (has `blob`).",
        "anyOf": [
            {"$ref": _REF_TEMPLATE.format(name="TextResourceContents")},
            {"$ref": _REF_TEMPLATE.format(name="BlobResourceContents")},
        ],
    }

    for name, method in _methods().items():
        defs[name]["x-method"] = method

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Parley protocol: ACP v1 types and Parley extensions",
        "description": (
            "Wire types of the Parley agent daemon. ACP v1 messages follow the ACP schema; "
            "Parley's additions live under `_meta.parley` and in `_parley/...` methods."
        ),
        "x-acp-protocol-version": PROTOCOL_VERSION,
        "x-parley-extension-methods": list(parley.EXTENSION_METHODS),
        "$defs": defs,
    }


def render_schema() -> str:
    return json.dumps(build_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parley_protocol.schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="schema file path")
    args = parser.parse_args(argv)
    output: Path = args.output
    text = render_schema()
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else None
        if current != text:
            state = "missing" if current is None else "stale"
            print(
                f"{output} is {state}: run `python -m parley_protocol.schema` and commit it",
                file=sys.stderr,
            )
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
