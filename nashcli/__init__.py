"""nashcli: find similar documents in your own files by semantic hashing (NASH)."""

__version__ = "0.1.0"
