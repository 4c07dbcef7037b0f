"""A tool's JSON Schema in the subset Gemini's function declarations accept.

`parameters` of a Gemini function declaration is an OpenAPI-style `Schema`
(https://ai.google.dev/api/caching#Schema): the request is refused with
"Invalid JSON payload ... Unknown name" for keys outside it, such as
`additionalProperties`, `$schema` or `exclusiveMinimum`, and `type` must be
one name, not a list. What a key constrains but Gemini cannot say is left
out (the tool still validates the arguments it gets); what Gemini says its
own way is translated: a nullable union becomes `nullable`, `oneOf` becomes
`anyOf`, a string `const` a one-value `enum`.
"""

from __future__ import annotations

from typing import Any

_KEPT = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "propertyOrdering",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "default",
        "example",
        "anyOf",
    }
)


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with what Gemini refuses removed or rewritten, at every depth."""
    node = dict(schema)
    if "oneOf" in node and "anyOf" not in node:
        node["anyOf"] = node.pop("oneOf")
    if isinstance(const := node.pop("const", None), str):
        node["enum"] = [const]
    _single_type(node)
    if "anyOf" in node:
        _collapse_nullable(node)
    # Gemini's enums are strings, for string values only.
    if "enum" in node and not all(isinstance(value, str) for value in node["enum"]):
        del node["enum"]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEPT:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _subschema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = _subschema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [_subschema(sub) for sub in value]
        else:
            out[key] = value
    return out


def _subschema(value: Any) -> Any:
    return gemini_schema(value) if isinstance(value, dict) else value


def _single_type(node: dict[str, Any]) -> None:
    """`"type": ["string", "null"]` as `"type": "string", "nullable": true`;
    several types as an `anyOf` of one each."""
    kinds = node.get("type")
    if not isinstance(kinds, list):
        return
    named = [kind for kind in kinds if kind != "null"]
    if len(named) < len(kinds):
        node["nullable"] = True
    if len(named) == 1:
        node["type"] = named[0]
    else:
        del node["type"]
        if named:
            node["anyOf"] = [{"type": kind} for kind in named]


def _collapse_nullable(node: dict[str, Any]) -> None:
    """`anyOf: [X, {"type": "null"}]` (how msgspec and pydantic write an
    optional field) as X with `nullable: true`."""
    members = [
        member
        for member in node["anyOf"]
        if not (isinstance(member, dict) and member.get("type") == "null")
    ]
    if len(members) == len(node["anyOf"]):
        return
    node["nullable"] = True
    if len(members) == 1 and isinstance(members[0], dict):
        del node["anyOf"]
        node.update({key: value for key, value in members[0].items() if key not in node})
    else:
        node["anyOf"] = members
