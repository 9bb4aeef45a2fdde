"""Shared fixtures for the view tests: a trap for swallowed paint errors (pixel helpers are in
view_pixels.py).

pyqtgraph catches exceptions raised while an item paints and only reports them through
pyqtgraph.debug.printExc (GL items: "Error while drawing item"). A broken view would then pass
every test that does not look at pixels, so every test here fails if printExc was called.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fail_on_swallowed_errors(monkeypatch):
    import pyqtgraph.debug

    calls: list[str] = []

    def record(msg: str = "", *args, **kwargs) -> None:
        calls.append(f"{msg}\n{pyqtgraph.debug.getExc()}")

    monkeypatch.setattr(pyqtgraph.debug, "printExc", record)
    yield calls
    assert not calls, "pyqtgraph swallowed errors while painting:\n" + "\n".join(calls)
