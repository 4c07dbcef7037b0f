"""The checked-in JSON Schema is current, deterministic, and describes the wire."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from parley_protocol import schema
from tests.protocol import samples

CHECKED_IN = Path(__file__).resolve().parents[2] / "protocol/schema/parley-protocol.schema.json"


def test_checked_in_schema_is_current() -> None:
    """Runs the real `--check` path; on failure: `python -m parley_protocol.schema`."""
    proc = subprocess.run(
        [sys.executable, "-m", "parley_protocol.schema", "--check", "--output", str(CHECKED_IN)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_check_detects_stale_and_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "schema.json"
    assert schema.main(["--check", "--output", str(target)]) == 1
    assert "missing" in capsys.readouterr().err
    assert schema.main(["--output", str(target)]) == 0
    assert schema.main(["--check", "--output", str(target)]) == 0
    target.write_text(target.read_text().replace('"ToolCallStart"', '"ToolCallBegin"', 1))
    assert schema.main(["--check", "--output", str(target)]) == 1
    assert "stale" in capsys.readouterr().err


def test_generation_is_deterministic() -> None:
    text = schema.render_schema()
    assert text == schema.render_schema()
    assert text.endswith("}\n")
    assert json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text


@pytest.fixture(scope="module")
def exported() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(schema.render_schema())
    Draft202012Validator.check_schema(doc)
    return doc


def validator(doc: dict[str, Any], name: str) -> Draft202012Validator:
    resource = Resource.from_contents(doc, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:parley", resource)
    return Draft202012Validator({"$ref": f"urn:parley#/$defs/{name}"}, registry=registry)


def test_schema_covers_every_public_type(exported: dict[str, Any]) -> None:
    defs = exported["$defs"]
    for name in (
        "InitializeRequest",
        "InitializeResponse",
        "SessionNotification",
        "SessionUpdate",
        "ContentBlock",
        "ToolCallContent",
        "RequestPermissionRequest",
        "RequestPermissionResponse",
        "ConversationRef",
        "UsageDetail",
        "ParleyCapabilities",
        "SessionSettings",
    ):
        assert name in defs
    assert defs["PromptRequest"]["x-method"] == "session/prompt"
    assert defs["ToolCallCancelParams"]["x-method"] == "_parley/toolCall/cancel"
    assert "apiKey" not in defs["SessionSettings"]["properties"]
    resource = defs["EmbeddedResourceResource"]["anyOf"]
    assert resource == [
        {"$ref": "#/$defs/TextResourceContents"},
        {"$ref": "#/$defs/BlobResourceContents"},
    ]


def test_encoded_samples_validate_against_the_export(exported: dict[str, Any]) -> None:
    check = validator(exported, "SessionNotification")
    for update in samples.SESSION_UPDATES:
        check.validate(samples.notification_frame(update)["params"])
    validator(exported, "InitializeResponse").validate(samples.to_json(samples.INITIALIZE_RESPONSE))
    usage = validator(exported, "UsageDetail")
    usage.validate(samples.to_json(samples.USAGE))
    assert not usage.is_valid({"turn": {}, "session": {}})
