"""The theory panel's numbers and the lr warning, on their own (the window tests drive them)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from gdsim.engine import theory
from gdsim.ui.panels.theory import TheoryPanel, lr_warning, predicted_rate
from gdsim.ui.widgets import BAD_STYLE, WARN_STYLE, NumberEdit


def test_predicted_rate_for_sgd_settings():
    lam = np.array([1.0, 4.0])
    assert predicted_rate("sgd", {"lr": 0.3}, lam)[0] == pytest.approx(0.7)
    heavy = predicted_rate("sgd", {"lr": 0.5, "momentum": 0.25}, np.array([1.0]))[0]
    assert heavy == pytest.approx(0.5)
    # Weight decay adds to each curvature; dampening scales the lr.
    assert predicted_rate("sgd", {"lr": 0.3, "weight_decay": 1.0}, lam)[0] == pytest.approx(
        theory.gd_rate(lam + 1.0, 0.3)
    )
    damped = predicted_rate("sgd", {"lr": 0.2, "momentum": 0.5, "dampening": 0.5}, lam)[0]
    assert damped == pytest.approx(theory.heavy_ball_rate(lam, 0.1, 0.5))
    assert predicted_rate("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}, lam) == (
        None,
        "the prediction covers the heavy ball, not Nesterov",
    )
    rate, why = predicted_rate("adam", {"lr": 0.1}, lam)
    assert rate is None and "SGD" in why


def test_lr_warning_text():
    assert lr_warning("sgd", {"lr": 0.5}, 1.0) == ""
    assert lr_warning("sgd", {"lr": 1.0}, 1.0) == ""  # at the ceiling it bounces, not grows
    assert lr_warning("sgd", {"lr": 0.6}, 0.4) == (
        "lr 0.6 is above 2/λmax = 0.4 here: plain GD overshoots this minimum"
    )
    text = lr_warning("sgd", {"lr": 0.6, "momentum": 0.9}, 0.4)
    assert "2(1+β)/λmax = 0.76" in text and "can still converge" in text
    assert "still diverges" in lr_warning("sgd", {"lr": 0.9, "momentum": 0.9}, 0.4)
    assert lr_warning("adam", {"lr": 5.0}, 0.4) == ""  # adaptive: lr is not the step
    assert lr_warning("sgd", {"lr": 5.0}, math.inf) == ""  # no curvature, no ceiling


def test_panel_numbers_on_the_ravine(qtbot):
    panel = TheoryPanel()
    qtbot.addWidget(panel)
    panel.show()
    h = np.diag([1.0, 50.0])
    losses = 0.5 * 0.9 ** (2 * np.arange(100))
    panel.show_run("GD", "sgd", {"lr": 0.002}, h, h, losses, 0.0)
    assert panel.curvature_label.text() == "1, 50"
    assert panel.ceiling == pytest.approx(0.04) and panel.ceiling_label.text() == "0.04"
    assert panel.kappa_label.text() == "50"
    assert panel.quadratic_box.isVisible()
    assert panel.predicted_label.text() == "0.998 per step"
    assert panel.measured_label.text() == "0.9 per step"
    assert panel.prediction == (pytest.approx(0.998), 0.0)
    panel.show_run("GD", "sgd", {"lr": 0.05}, h, h, losses, 0.0)
    assert "diverges" in panel.predicted_label.text() and panel.prediction is None
    with qtbot.waitSignal(panel.useOptimalRequested):
        qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    # A saddle is quadratic but has no minimum: no optimum, and the panel says why.
    s = np.diag([2.0, -2.0])
    panel.show_run("GD", "sgd", {"lr": 0.1}, s, s, losses, None)
    assert not panel.quadratic_box.isVisible() and panel.optimal is None
    assert "not positive definite" in panel.note.text()
    assert panel.ceiling_label.text() == "1"
    panel.show_run("GD", "sgd", {"lr": 0.1}, -np.eye(2), None, losses, None)
    assert panel.ceiling == math.inf and "none here" in panel.ceiling_label.text()


def test_a_number_edit_warning_is_amber_and_an_error_wins(qtbot):
    edit = NumberEdit(0.5, name="lr", low=0.0)
    qtbot.addWidget(edit)
    edit.setBaseToolTip("learning rate")
    edit.set_warning("too high here")
    assert edit.styleSheet() == WARN_STYLE and edit.toolTip() == "too high here"
    edit.setText("-1")
    edit._check_live("-1")
    assert edit.styleSheet() == BAD_STYLE and "outside" in edit.toolTip()
    edit.set_value(0.5)  # the model's value again: the warning is still there
    assert edit.styleSheet() == WARN_STYLE
    edit.set_warning("")
    assert edit.styleSheet() == "" and edit.toolTip() == "learning rate"
