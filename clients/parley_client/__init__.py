"""parley_client: async client for parleyd and the `parley` CLI."""

from parley_client.connection import ParleyClient, Updates
from parley_client.errors import DISCONNECTED, ParleyError
from parley_client.permissions import PermissionHandler, allow_all, choose, deny_all
from parley_client.render import Renderer
from parley_client.transcript import Transcript, compare_replay

__all__ = [
    "DISCONNECTED",
    "ParleyClient",
    "ParleyError",
    "PermissionHandler",
    "Renderer",
    "Transcript",
    "Updates",
    "allow_all",
    "choose",
    "compare_replay",
    "deny_all",
]
