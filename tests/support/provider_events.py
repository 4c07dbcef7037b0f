"""Provider events in the one form byte boundaries cannot change."""

from __future__ import annotations

from collections.abc import Iterable

from parleyd.providers.events import JoinedEvents, ProviderEvent


def joined_runs(events: Iterable[ProviderEvent]) -> list[ProviderEvent]:
    """The events with every run of side-by-side deltas of one kind joined:
    which deltas arrived together (and were joined) depends on the network."""
    out = JoinedEvents()
    for event in events:
        out.add(event)
    return out.take()
