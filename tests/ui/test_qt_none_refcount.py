"""Guard against the PySide6 release that drops a reference to None on every void Qt call.

PySide6 6.12.0 on CPython 3.11 decrements None's refcount once per call of a Qt method that
returns nothing; after some thousands of calls Python aborts with `none_dealloc`
(shared/reference/platform-notes.md). pyproject.toml pins below it where Python < 3.12; this test
catches the bug in whatever release is installed, so a future bad release fails here first.
"""

import sys

from PySide6.QtWidgets import QApplication, QWidget


def test_void_qt_calls_do_not_drop_references_to_none(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    app = QApplication.instance()
    calls = 5000
    before = sys.getrefcount(None)
    for k in range(calls):
        widget.setObjectName("probe")  # returns None
        widget.setToolTip("tip")  # returns None
        if k % 100 == 0:
            app.processEvents()
    after = sys.getrefcount(None)
    # Other code may create or drop a few references meanwhile; the bug costs 2 * calls.
    assert abs(after - before) < calls // 10, (before, after)
