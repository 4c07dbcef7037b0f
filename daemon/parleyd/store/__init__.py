"""Sessions on disk: an append-only log per session and an index to list them."""
