"""Model providers: one module per wire API, all yielding the events of `events.py`."""
