"""The engine runs in a child process that lives and dies with the window."""

from __future__ import annotations

import os
import signal

import numpy as np
from PySide6.QtCore import Qt

from tests.ui.conftest import color_array, wait_drawn


def _dark_pixels(widget) -> int:
    """How many near-black pixels (text) the widget shows."""
    return int(np.all(color_array(widget.grab().toImage()) < 90, axis=2).sum())


def _play_flat_out(window, qtbot) -> None:
    window.doc.set_steps(10_000_000)
    window.playback.max_speed.setChecked(True)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.packet.playing, timeout=10000)


def test_the_engine_is_another_process(make_window, qtbot):
    window = make_window()
    proc = window.worker.process
    assert proc.is_alive() and proc.pid != os.getpid()
    before = window.packet.frame.step.copy()
    _play_flat_out(window, qtbot)
    # the balls move, so the child's packets arrive and are drawn
    qtbot.waitUntil(lambda: np.all(window.packet.frame.step > before + 50), timeout=10000)
    wait_drawn(qtbot, window)


def test_closing_the_window_ends_the_engine_process(make_window, qtbot):
    window = make_window()
    proc = window.worker.process
    pid = proc.pid
    _play_flat_out(window, qtbot)
    window.close()
    assert window.worker.isFinished()
    assert not proc.is_alive()
    assert proc.exitcode == 0  # it quit when asked, it was not killed
    assert not os.path.exists(f"/proc/{pid}")  # reaped: no zombie left behind


def test_a_killed_engine_is_said_in_the_status_bar(make_window, qtbot):
    window = make_window()
    bar = window.statusBar()
    _play_flat_out(window, qtbot)
    qtbot.waitUntil(lambda: bar.currentMessage() == "", timeout=10000)
    text_before = _dark_pixels(bar)
    os.kill(window.worker.process.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "stopped unexpectedly" in bar.currentMessage(), timeout=10000)
    assert "signal 9" in bar.currentMessage()
    # a person sees it: the message adds text to the bar
    qtbot.waitUntil(lambda: _dark_pixels(bar) > text_before + 200, timeout=5000)
    # the window still answers: Space (play/pause) and a step go nowhere, and nothing hangs
    qtbot.keyClick(window, Qt.Key.Key_Space)
    window.worker.post("step", 1)
    qtbot.waitUntil(window.worker.isFinished, timeout=5000)  # the reader ended with the child
    window.close()
    assert not window.worker.process.is_alive()
