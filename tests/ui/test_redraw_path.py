"""The per-frame redraw path: what it shows while the balls roll, and what it must not cost.

Both changes here were made for speed (see the commit messages), so the tests check that a
person still sees the same thing: numbers and colours in the readouts as they change, and the
whole step counter in the status bar. The status bar test also checks the reason for the
change: the step counter no longer re-lays out the status bar on every frame.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import color_array, wait_drawn
from tests.ui.test_main_window import press, sgd, write_scenario


def _cell_pixels(table, row: int, column: int) -> np.ndarray:
    """RGB pixels of one readout cell as drawn on screen."""
    rect = table.visualRect(table.model().index(row, column))
    image = table.viewport().grab(rect).toImage()
    return color_array(image)


def test_readouts_show_new_numbers_and_run_colours_while_playing(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path,
        {"name": "bowl"},
        [
            sgd("red run", 0.001, (1.5, 0.5), color="#ff0000"),
            sgd("blue run", 0.001, (-1.5, 0.5), color="#0000ff"),
        ],
        steps=100_000,
    )
    window = make_window(path)
    table = window.readouts
    before = _cell_pixels(table, 0, 1)
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.packet.frame.step[0] >= 200, timeout=10000)
    press(qtbot, window, Qt.Key.Key_Space)  # pause: the readouts then follow every frame
    qtbot.waitUntil(lambda: not window.packet.playing, timeout=10000)
    wait_drawn(qtbot, window)
    qtbot.waitUntil(lambda: table.item(0, 7).text() == "paused", timeout=5000)
    step = int(window.packet.frame.step[0])
    assert table.item(0, 1).text() == str(step)
    assert table.item(1, 1).text() == str(int(window.packet.frame.step[1]))
    # On screen: the step cell was redrawn with the new number (its pixels changed) and holds
    # dark text; the label cells carry each run's colour (translucent over the white table).
    qtbot.waitUntil(lambda: not np.array_equal(_cell_pixels(table, 0, 1), before), timeout=5000)
    step_cell = _cell_pixels(table, 0, 1)
    assert (step_cell.max(axis=2) < 100).sum() > 5
    red, blue = _cell_pixels(table, 0, 0), _cell_pixels(table, 1, 0)
    red_mean, blue_mean = red.reshape(-1, 3).mean(0), blue.reshape(-1, 3).mean(0)
    assert red_mean[0] > red_mean[2] + 40
    assert blue_mean[2] > blue_mean[0] + 40


class _LayoutCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched, event):  # Qt naming
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


def test_status_bar_shows_the_whole_step_count_without_relayout_each_frame(
    make_window, qtbot, tmp_path
):
    path = write_scenario(
        tmp_path, {"name": "bowl"}, [sgd("GD", 0.001, (1.5, 0.5))], steps=1_000_000
    )
    window = make_window(path)
    bar = window.statusBar()
    counter = _LayoutCounter()
    bar.installEventFilter(counter)
    frames = []
    window.redrawn.connect(lambda: frames.append(window.packet.frame.step[0]))
    if not window.playback.max_speed.isChecked():
        qtbot.mouseClick(window.playback.max_speed, Qt.MouseButton.LeftButton)
    assert window.playback.max_speed.isChecked()
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: len(frames) >= 40 and frames[-1] >= 2000, timeout=20000)
    press(qtbot, window, Qt.Key.Key_Space)
    bar.removeEventFilter(counter)
    # Forty frames, each with a new step count: the label widened a few times at most
    # (in 24 px steps as the count grew), instead of laying the status bar out every frame.
    assert counter.count <= 6, counter.count
    wait_drawn(qtbot, window)
    label = window.status_step
    text = label.text()
    assert text == f"step {int(window.packet.frame.step.max())}"
    assert label.width() >= label.fontMetrics().horizontalAdvance(text)
    # The text is drawn, and all of it: dark pixels reach close to its measured right end.
    pixels = color_array(label.grab().toImage())
    dark_columns = np.nonzero((pixels.max(axis=2) < 110).any(axis=0))[0]
    ratio = label.devicePixelRatioF()
    assert len(dark_columns) > 0
    advance = label.fontMetrics().horizontalAdvance(text) * ratio
    assert dark_columns[-1] - dark_columns[0] > 0.7 * advance


def _on_screen(window, widget) -> np.ndarray:
    """The widget's pixels as the X server shows them: what was last painted, not a re-render."""
    corner = widget.mapTo(window, QPoint(0, 0))
    pixmap = window.screen().grabWindow(
        window.winId(), corner.x(), corner.y(), widget.width(), widget.height()
    )
    return color_array(pixmap.toImage())


def test_loss_plot_on_screen_follows_the_runs_while_playing(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path,
        {"name": "bowl"},
        [sgd("slow", 0.0005, (1.5, 1.0), color="#ff0000")],
        steps=1_000_000,
    )
    window = make_window(path)
    if not window.playback.max_speed.isChecked():
        qtbot.mouseClick(window.playback.max_speed, Qt.MouseButton.LeftButton)
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.packet.playing and window.packet.frame.step[0] > 300)
    first = _on_screen(window, window.loss_plot)

    def moved_on() -> bool:
        # Still playing and the screen shows a newer plot than `first`: a loss plot whose
        # viewport was left stale while playing fails here.
        if not window.packet.playing:
            return False
        return not np.array_equal(_on_screen(window, window.loss_plot), first)

    qtbot.waitUntil(moved_on, timeout=10000)
    # The red run's curve is on screen.
    now = _on_screen(window, window.loss_plot)
    assert ((now[..., 0] > 150) & (now[..., 1] < 90) & (now[..., 2] < 90)).sum() > 20
    window.set_playing(False)  # what the Pause button calls
    qtbot.waitUntil(lambda: not window.packet.playing)
    wait_drawn(qtbot, window)
    # Paused, Qt's own updates are back: a wheel zoom on the plot reaches the screen.
    before = _on_screen(window, window.loss_plot)
    centre = window.loss_plot.viewport().rect().center()
    event = QWheelEvent(
        QPointF(centre),
        QPointF(window.loss_plot.viewport().mapToGlobal(centre)),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(window.loss_plot.viewport(), event)
    qtbot.waitUntil(lambda: not np.array_equal(_on_screen(window, window.loss_plot), before))


def test_slice_view_on_screen_follows_the_ball_while_playing(make_window, qtbot, tmp_path):
    """Beside the other views the slice is redrawn at 10 Hz while playing (and its viewport
    ignores its own scene updates then): what reaches the screen must still follow the ball."""
    path = write_scenario(
        tmp_path,
        {"name": "bowl"},
        [sgd("slow", 0.0005, (1.5, 1.0), color="#ff0000")],
        steps=1_000_000,
    )
    window = make_window(path)
    plot = window.slice_view.plot
    assert window.slice_view.isVisible()
    if not window.playback.max_speed.isChecked():
        qtbot.mouseClick(window.playback.max_speed, Qt.MouseButton.LeftButton)
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.packet.playing and window.packet.frame.step[0] > 300)
    first = _on_screen(window, plot)
    f0 = window.slice_view.state.f0

    def moved_on() -> bool:
        if not window.packet.playing:
            return False
        return window.slice_view.state.f0 < f0 and not np.array_equal(
            _on_screen(window, plot), first
        )

    qtbot.waitUntil(moved_on, timeout=10000)
    # the red ball is on screen where the slice says it is
    now = _on_screen(window, plot)
    assert ((now[..., 0] > 150) & (now[..., 1] < 90) & (now[..., 2] < 90)).sum() > 20
    window.set_playing(False)
