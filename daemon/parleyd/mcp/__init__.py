"""MCP servers as a session's tools: kept up (`host.py`), reached through the
official SDK (`connection.py`, `content.py`), their tools in the registry
(`tool.py`). Which servers a session has is `mcp_servers.py`'s, beside this."""
