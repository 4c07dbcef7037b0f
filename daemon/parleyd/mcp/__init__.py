"""MCP servers as a session's tools: which servers (`servers.py`), kept up
(`host.py`), reached through the official SDK (`connection.py`, `content.py`),
their tools in the registry (`tool.py`)."""
