from __future__ import annotations

from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from parleyd.providers.messages import ToolSpec
from parleyd.tools.base import ToolContext, ToolError
from parleyd.tools.files import ReadFile
from parleyd.tools.registry import ToolRegistry, builtin_registry

BUILTINS = (
    "read_file",
    "list_directory",
    "search_text",
    "write_file",
    "edit_file",
    "glob",
    "update_plan",
    "run_shell",
    "subagent",
)


def test_builtin_registry_offers_the_built_in_tools() -> None:
    registry = builtin_registry()
    assert [tool.name for tool in registry] == list(BUILTINS)
    assert len(registry) == len(BUILTINS)
    assert "run_shell" in registry
    assert registry.get("read_file").kind == "read"


def test_specs_are_plain_object_schemas() -> None:
    specs = builtin_registry().specs()
    assert all(isinstance(spec, ToolSpec) for spec in specs)
    assert [spec.name for spec in specs] == list(BUILTINS)
    for spec in specs:
        assert spec.description
        assert spec.parameters["type"] == "object"
        assert isinstance(spec.parameters["properties"], dict)
        assert "$ref" not in str(spec.parameters)
        assert "$defs" not in spec.parameters
        jsonschema.Draft202012Validator.check_schema(spec.parameters)


def test_schemas_accept_what_the_tools_accept() -> None:
    read = {spec.name: spec.parameters for spec in builtin_registry().specs()}["read_file"]
    jsonschema.validate({"path": "a", "offset": 2}, read)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"path": "a", "extra": 1}, read)


def test_unknown_tool_lists_the_available_ones() -> None:
    with pytest.raises(ToolError) as caught:
        builtin_registry().get("delete_everything")
    assert str(caught.value) == (
        "unknown tool 'delete_everything'; available: " + ", ".join(BUILTINS)
    )


def test_a_subset_keeps_the_named_tools_and_refuses_unknown_ones() -> None:
    registry = builtin_registry()
    assert [tool.name for tool in registry.subset(["run_shell", "read_file"])] == [
        "run_shell",
        "read_file",
    ]
    with pytest.raises(ToolError, match=r"unknown tool\(s\) fly, swim; available: read_file"):
        registry.subset(["read_file", "fly", "swim"])
    assert "subagent" not in registry.without("subagent")
    assert len(registry.without("subagent")) == len(registry) - 1


def test_duplicate_names_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="two tools are named 'read_file'"):
        ToolRegistry([ReadFile(), ReadFile()])


def test_parse_arguments() -> None:
    tool = ReadFile()
    parse = ToolRegistry.parse_arguments
    assert parse(tool, '{"path": "a.py"}') == {"path": "a.py"}
    assert parse(tool, "") == {}
    assert parse(tool, "  \n") == {}
    with pytest.raises(
        ToolError, match=r"arguments for read_file are not valid JSON .*'\{\"path\": \"a\.py'"
    ):
        parse(tool, '{"path": "a.py')
    with pytest.raises(ToolError, match=r"must be a JSON object, not list: '\[1, 2\]'"):
        parse(tool, "[1, 2]")
    long_garbage = "x" * 1000
    with pytest.raises(ToolError) as caught:
        parse(tool, long_garbage)
    assert len(str(caught.value)) < 300
    assert str(caught.value).endswith("...")


async def test_parsed_arguments_run_the_tool(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello\n")
    registry = builtin_registry()
    tool = registry.get("read_file")
    result = await tool.run(
        registry.parse_arguments(tool, '{"path": "a.txt"}'), ToolContext(tmp_path)
    )
    assert result.output == "hello\n"
