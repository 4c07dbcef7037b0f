"""parleyd: the Parley agent daemon."""

__version__ = "0.1.0"
