"""Building many long-lived objects at once without Python's cycle collector.

A load decodes a whole session log and rebuilds its histories and its replay:
hundreds of thousands of objects that all outlive the load. The collector,
counting them as they are made, would run all through it, each full
collection walking every object built so far, which cost a long session's
load more than all its other work (it found nothing: records hold no cycles).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No collection inside the block. What the block built then counts as
    old (freezing and unfreezing moves every tracked object to the oldest
    generation without walking any), so the first collections after it do
    not walk it all again either. Nested blocks leave that to the outermost."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()
