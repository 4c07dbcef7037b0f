"""Which MCP servers a session has, as the client and config.toml name them,
and the names their tools go by."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley_protocol.mcp_servers import McpServerHttp, McpServerSse, McpServerStdio
from parleyd.config import ConfigError, load_settings
from parleyd.mcp_servers import ServerListError, from_client, session_servers, tool_name


def test_tool_names_are_prefixed_made_safe_and_kept_within_the_providers_limit() -> None:
    assert tool_name("files", "read_file") == "mcp__files__read_file"
    assert tool_name("my.server", "get tiny/image") == "mcp__my_server__get_tiny_image"
    long_a, long_b = tool_name("s", "x" * 80 + "a"), tool_name("s", "x" * 80 + "b")
    assert len(long_a) == len(long_b) == 64 and long_a != long_b


def test_a_clients_servers_are_typed_and_each_wrong_one_named() -> None:
    stdio, http, sse = from_client(
        [
            {"name": "a", "command": "/bin/a", "args": ["-v"], "env": []},
            {"type": "http", "name": "b", "url": "http://127.0.0.1:1/mcp", "headers": []},
            {"type": "sse", "name": "c", "url": "http://127.0.0.1:1/sse", "headers": []},
        ]
    )
    assert isinstance(stdio, McpServerStdio) and stdio.args == ["-v"]
    assert isinstance(http, McpServerHttp) and isinstance(sse, McpServerSse)
    cases = {
        "mcpServers[1]: Object missing required field `command`": [
            {"name": "a", "command": "x"},
            {"name": "b"},
        ],
        "mcpServers[0]: unknown type 'ws'; the types are stdio, http and sse": [
            {"type": "ws", "name": "a", "url": "ws://x"}
        ],
        "mcpServers: two servers are named 'a'": [
            {"name": "a", "command": "x"},
            {"name": "a", "command": "y"},
        ],
        "named 'a.b' and 'a_b', which their tools' names cannot tell apart": [
            {"name": "a.b", "command": "x"},
            {"name": "a_b", "command": "y"},
        ],
        "mcpServers[0]: name must not be empty": [{"name": " ", "command": "x"}],
    }
    for message, servers in cases.items():
        with pytest.raises(ServerListError, match=message.replace("[", r"\[").replace("]", r"\]")):
            from_client(servers)


def test_config_toml_servers_load_and_the_clients_replace_them_by_name(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[mcp_servers.files]\ncommand = "npx"\nargs = ["-y", "server-filesystem"]\n'
        'env = { ROOT = "/srv" }\n'
        '[mcp_servers.web]\nurl = "http://127.0.0.1:9/mcp"\nheaders = { Authorization = "x" }\n'
    )
    settings = load_settings({"PARLEY_CONFIG": str(config)})
    files, web = settings.mcp_servers
    assert isinstance(files, McpServerStdio) and files.args == ["-y", "server-filesystem"]
    assert [(v.name, v.value) for v in files.env] == [("ROOT", "/srv")]
    assert isinstance(web, McpServerHttp) and web.headers[0].name == "Authorization"
    assert "Authorization" not in str(settings.public())
    (mine,) = from_client([{"name": "files", "command": "/opt/files", "args": [], "env": []}])
    assert [s.name for s in session_servers(settings.mcp_servers, [mine])] == ["web", "files"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[mcp_servers.x]\nargs = ["a"]\n', r"mcp_servers.x: no `command` or `url`"),
        ('[mcp_servers.x]\ncommand = "a"\nurl = "b"\n', r"mcp_servers.x: unknown key\(s\) url"),
        ('[mcp_servers.x]\ncommand = "a"\nenv = { A = 1 }\n', r"x.env must be a table of strings"),
        ('[mcp_servers.x]\nurl = "u"\ntype = "ws"\n', r"unknown type 'ws'"),
        ("mcp_servers = 3\n", r"mcp_servers must be a table of servers"),
    ],
)
def test_a_wrong_server_in_config_toml_is_an_error_naming_it(
    tmp_path: Path, table: str, message: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(table)
    with pytest.raises(ConfigError, match=message):
        load_settings({"PARLEY_CONFIG": str(config)})
