"""tracepatch: see exactly what your code did, every call in one readable tree."""

from ._version import __version__

__all__ = ["__version__"]
