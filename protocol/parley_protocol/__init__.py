"""Parley's wire types: ACP v1 messages, Parley's `_parley` extensions, JSON-RPC envelopes.

camelCase on the wire, snake_case in Python; `_meta` is preserved everywhere as
the `meta` field.
"""

PROTOCOL_VERSION = 1
