"""The loss plot: curves in their colours, a log axis that says what it shows."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication
from view_pixels import dominant, rgb_array, save_shot

from gdsim.ui.views.loss_plot import LossPlot
from tests.ui.conftest import show_widget

RED, BLUE = "#ff0000", "#0000ff"


@pytest.fixture
def plot(qtbot):
    p = show_widget(qtbot, LossPlot(), 640, 400)
    p.set_runs(["SGD", "Adam"], [RED, BLUE])
    return p


def pixels(plot) -> np.ndarray:
    QApplication.processEvents()
    return rgb_array(plot.grab().toImage())


def curve_y_pixels(plot, color: str, column_data_x: float) -> np.ndarray:
    """Rows where the curve of this colour crosses the column at data x."""
    arr = pixels(plot)
    vb = plot.getViewBox()
    from PySide6.QtCore import QPointF

    scene = vb.mapViewToScene(QPointF(column_data_x, 0.0))
    col = round(plot.mapFromScene(scene).x())
    channel = {RED: 0, BLUE: 2}[color]
    return np.nonzero(dominant(arr[:, col - 1 : col + 2], channel).any(axis=1))[0]


def test_curves_are_drawn_in_their_colours_on_a_log_axis(plot):
    steps = np.arange(200)
    plot.update_runs([10.0 * 0.97**steps, 10.0 * 0.9**steps], [True, True], [False, False])
    save_shot(plot.grab().toImage(), "test_loss_plot")
    arr = pixels(plot)
    assert dominant(arr, 0).sum() > 100
    assert dominant(arr, 2).sum() > 100
    assert plot.is_log()
    assert plot.getAxis("left").logMode
    assert plot.axis_label() == "loss (log scale)"
    # On a log axis exponential decay is a straight line: equal pixel drops for equal steps.
    rows = [curve_y_pixels(plot, RED, s).mean() for s in (20, 70, 120)]
    assert rows[1] - rows[0] == pytest.approx(rows[2] - rows[1], rel=0.1)


def test_linear_axis_on_request(plot):
    steps = np.arange(100)
    plot.update_runs([10.0 * 0.97**steps, 5.0 * 0.9**steps], [True, True], [False, False])
    plot.set_log(False)
    assert not plot.is_log() and not plot.getAxis("left").logMode
    assert plot.axis_label() == "loss"


def test_nonpositive_losses_are_shifted_and_the_label_says_so(plot):
    steps = np.arange(100)
    a = 1.0 * 0.95**steps - 1.0  # falls to ... just above -1
    b = np.full(100, -0.5)
    plot.update_runs([a, b], [True, True], [False, False])
    label = plot.axis_label()
    assert "min loss" in label and "log" in label
    arr = pixels(plot)
    assert dominant(arr, 0).sum() > 50
    assert dominant(arr, 2).sum() > 50
    # Known optimum: the gap to it.
    plot.set_reference(-1.0)
    assert plot.axis_label().startswith("loss − f*")


def test_diverged_run_ends_with_an_x_and_keeps_the_chart_for_the_others(plot):
    steps = np.arange(50)
    healthy = 5.0 * 0.9**steps
    blowup = np.r_[5.0 * 1.8 ** np.arange(30), np.inf, np.nan]
    plot.update_runs([blowup, healthy], [True, False], [True, False])
    plot.update_runs([blowup, healthy], [True, True], [True, False])
    save_shot(plot.grab().toImage(), "test_loss_plot_diverged")
    cross = plot._crosses[0]
    assert cross.isVisible()
    _, ys = cross.getData()
    # The X sits where the curve leaves the chart, 1.5 decades above the healthy run's top.
    assert ys[0] == pytest.approx(np.log10(5.0) + 1.5)
    assert not plot._crosses[1].isVisible()
    top = plot.getViewBox().viewRange()[1][1]
    assert top < np.log10(5.0) + 3


def test_current_step_marker(plot):
    plot.update_runs([np.ones(10), np.ones(10)], [True, True], [False, False], step=7)
    assert plot._step_line.isVisible() and plot._step_line.value() == 7
    plot.set_current_step(None)
    assert not plot._step_line.isVisible()


def test_legend_lists_the_runs(plot):
    labels = [item[1].text for item in plot.getPlotItem().legend.items]
    assert labels == ["SGD", "Adam"]
    plot.set_runs(["one"], ["#00ff00"])
    assert [item[1].text for item in plot.getPlotItem().legend.items] == ["one"]


def test_mismatched_input_is_refused(plot):
    with pytest.raises(ValueError, match="2 runs"):
        plot.update_runs([np.ones(3)], [True], [False])
    with pytest.raises(ValueError, match="colour"):
        plot.set_runs(["a"], ["nope"])
