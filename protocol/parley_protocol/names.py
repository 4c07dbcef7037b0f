"""Naming what a misspelt key was probably meant to be.

Settings are refused by name rather than ignored (a typo that silently does
nothing is worse than an error), and the refusal is only useful if it also says
what to write instead. The config file and `_meta.parley` both word it this way.
"""

from __future__ import annotations

from collections.abc import Iterable

# difflib's own default: close enough that the suggestion is the likely intent.
_CUTOFF = 0.6


def _folded(name: str) -> str:
    # `baseURL`, `base_url` and `base-url` are one name spelt three ways.
    return name.lower().replace("_", "").replace("-", "")


def closest_name(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to `name`, None when none is close."""
    import difflib  # only a mistake pays for it, not every start-up

    by_folded = {_folded(candidate): candidate for candidate in known}
    matches = difflib.get_close_matches(_folded(name), by_folded, n=1, cutoff=_CUTOFF)
    return by_folded[matches[0]] if matches else None


def describe_unknown(names: Iterable[str], known: Iterable[str], *, quote: str = "'") -> str:
    """`'modle' (did you mean 'model'?), 'colour'`: each unknown name, in the order
    given, with the closest known one when there is one."""
    candidates = list(known)
    described = []
    for name in names:
        suggestion = closest_name(name, candidates)
        hint = f" (did you mean {quote}{suggestion}{quote}?)" if suggestion else ""
        described.append(f"{quote}{name}{quote}{hint}")
    return ", ".join(described)
