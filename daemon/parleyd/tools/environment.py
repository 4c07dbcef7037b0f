"""The environment a command the model runs gets: the daemon's own, without its secrets.

A command the model wrote can print or send anywhere whatever it inherits, so
what looks like a credential stays behind: the provider keys the daemon reads,
and every variable whose name says it holds a key, a token, a secret, a
password, credentials or authentication. The user's allow list lets chosen ones
through (`gh` wants GITHUB_TOKEN, `git` over ssh wants SSH_AUTH_SOCK); the
daemon's own provider keys never pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection

from ..redaction import PROVIDER_KEY_VARIABLES

# A name component (the letters between `_`, digits and other separators) that is
# one of these words marks a secret: AWS_ACCESS_KEY_ID, SSH_AUTH_SOCK, API_KEYS.
# Whole words only, so KEYBOARD, AUTHOR and MONKEY are left alone.
SECRET_WORDS = frozenset({"KEY", "KEYS", "APIKEY", "AUTH", "CREDENTIAL", "CREDENTIALS"})
# A component ending in one of these does too, as the words are often glued to a
# prefix: PGPASSWORD, GHTOKEN, CLIENTSECRET. No ordinary word ends in them.
SECRET_ENDINGS = (
    "TOKEN",
    "TOKENS",
    "SECRET",
    "SECRETS",
    "PASSWORD",
    "PASSWORDS",
    "PASSWD",
    "PASSPHRASE",
)

_NAME_COMPONENTS = re.compile(r"[A-Z]+")


def looks_secret(name: str) -> bool:
    """Whether a variable's name says it holds a credential (case-insensitive)."""
    return any(
        component in SECRET_WORDS or component.endswith(SECRET_ENDINGS)
        for component in _NAME_COMPONENTS.findall(name.upper())
    )


def child_environment(allow: Collection[str] = ()) -> dict[str, str]:
    """The daemon's environment as it is now, less the provider keys and the
    secret-looking variables whose exact name is not in `allow`."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in PROVIDER_KEY_VARIABLES and (name in allow or not looks_secret(name))
    }
