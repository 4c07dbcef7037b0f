"""Answering `session/request_permission`: the handler type and the stock answers.

A handler gets the daemon's request and returns the id of the option it picks,
or None to answer `cancelled`. It picks by option *kind*, never by a hard-coded
id, so it keeps working with any agent's option ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from parley_protocol.acp import PermissionOptionId, PermissionOptionKind, RequestPermissionRequest

PermissionHandler = Callable[[RequestPermissionRequest], Awaitable[PermissionOptionId | None]]


def choose(
    request: RequestPermissionRequest, *kinds: PermissionOptionKind
) -> PermissionOptionId | None:
    """The first offered option of the first of `kinds` that is offered."""
    for kind in kinds:
        for option in request.options:
            if option.kind == kind:
                return option.option_id
    return None


async def allow_all(request: RequestPermissionRequest) -> PermissionOptionId | None:
    """Allow every call, once at a time (nothing is remembered as "always")."""
    return choose(request, "allow_once", "allow_always")


async def deny_all(request: RequestPermissionRequest) -> PermissionOptionId | None:
    """Reject every call, once at a time: the safe default for unattended clients."""
    return choose(request, "reject_once", "reject_always")
