"""The loss plot's theory line: dashed, shifted like the runs, in the legend, and removable."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication
from view_pixels import near_color, rgb_array, save_shot

from gdsim.ui.views.loss_plot import PREDICTION_COLOR, LossPlot
from tests.ui.conftest import show_widget


@pytest.fixture
def plot(qtbot):
    p = show_widget(qtbot, LossPlot(), 640, 400)
    p.set_runs(["GD"], ["#ff0000"])
    return p


def white(plot) -> np.ndarray:
    QApplication.processEvents()
    plot.grab()
    return near_color(rgb_array(plot.grab().toImage()), PREDICTION_COLOR, tol=25)


def test_the_prediction_is_drawn_dashed_and_shifted_like_the_runs(plot):
    steps = np.arange(100)
    plot.set_reference(3.0)
    plot.update_runs([3.0 + 2.0 * 0.9 ** (2 * steps)], [True], [False])
    assert white(plot).sum() < 40  # only legend text, no line yet
    predicted = 3.0 + 2.0 * 0.85 ** (2 * steps)
    plot.set_prediction(predicted, "GD: theory")
    save_shot(plot.grab().toImage(), "test_loss_plot_prediction")
    mask = white(plot)
    assert mask.sum() > 150
    # Drawn as loss - f*: the gaps, a straight line on the log axis (getData gives log10).
    _, y = plot._prediction_item.getData()
    assert 10**y == pytest.approx(2.0 * 0.85 ** (2 * steps))
    assert np.diff(y[:40]) == pytest.approx(np.full(39, 2 * np.log10(0.85)))  # above rounding
    assert plot._legend.getLabel(plot._prediction_item).text == "GD: theory"
    # Dashed: along the line's middle third some columns are lit and some are not.
    cols = mask[:, 250:400].any(axis=0)
    assert 0 < cols.sum() < cols.size
    assert plot.prediction() == pytest.approx(predicted)


def test_the_prediction_survives_new_runs_and_can_be_removed(plot):
    steps = np.arange(50)
    plot.update_runs([1.0 + 0.5**steps], [True], [False])
    plot.set_prediction(1.0 + 0.6**steps)
    plot.set_runs(["GD", "Adam"], ["#ff0000", "#0000ff"])  # clears the legend
    plot.update_runs([1.0 + 0.5**steps, 1.0 + 0.7**steps], [True, True], [False, False])
    assert plot._legend.getLabel(plot._prediction_item) is not None
    assert white(plot).sum() > 100
    plot.set_prediction(None)
    assert plot.prediction() is None
    assert not plot._prediction_item.isVisible()
    assert plot._legend.getLabel(plot._prediction_item) is None
