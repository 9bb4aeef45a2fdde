"""Atomic file writing for everything gdsim saves (data, figures, animations, scenarios).

Use :func:`atomic_open` as a context manager to stream a file, or :func:`atomic_write` for a
string or bytes at once. The file appears complete when the block ends or not at all: the data
goes to a temporary file in the same folder, is fsynced, then ``os.replace``-d over the target.

The code lives in :mod:`gdsim._atomic` because :mod:`gdsim.scenario` (a lower layer than
``gdsim.export``) saves scenarios through it too.
"""

from gdsim._atomic import atomic_open, atomic_write

__all__ = ["atomic_open", "atomic_write"]
