"""The Slice view, pure 1-D functions and the Theory dock in the real window: chosen, played,
clicked and typed as a person does, checked by what the screen shows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from gdsim.engine import surfaces, theory
from gdsim.ui.views.loss_plot import PREDICTION_COLOR
from gdsim.ui.views.slice_1d import CURVE_COLOR
from gdsim.ui.widgets import format_number
from tests.ui.conftest import color_array, color_mask, wait_drawn
from tests.ui.test_main_window import play_until, press, sgd, type_into, write_scenario

RED = "#ff0000"


def slice_pixels(window):
    view = window.slice_view
    view.plot.grab()
    return color_array(view.plot.grab().toImage())


def seen_near(window, rgb, point, color, radius=5) -> bool:
    (px, py) = window.slice_view.data_to_widget(np.asarray([point], dtype=float))[0]
    x, y = round(px), round(py)
    patch = rgb[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1]
    c = QColor(color)
    target = np.array([c.red(), c.green(), c.blue()])
    return bool((np.abs(patch - target) <= 50).all(axis=-1).any())


def group_edit(window, name, index=0):
    group = window.runs_panel.groups[window.doc.ids[index]]
    return group.params_editor.editor(name).edit


# ----------------------------------------------------------------------------------------------
def test_a_one_d_function_is_the_central_view_and_the_ball_rolls_along_it(
    make_window, qtbot, tmp_path
):
    path = write_scenario(
        tmp_path, {"name": "1d-double-well"}, [sgd("GD", 0.02, (1.8, 0.0), color=RED)], steps=400
    )
    window = make_window(path)
    s = window.doc.surface
    assert s.one_d
    # The slice replaces the 3-D view and the contour map; its direction is fixed to x.
    assert window._central.currentIndex() == 1
    assert window.slice_view.isVisible() and not window.view3d.isVisible()
    assert window.docks["Slice"].widget() is window._slice_moved
    view = window.slice_view
    assert view.direction() == "x" and not view.direction_combo.isEnabled()
    wait_drawn(qtbot, window)
    rgb = slice_pixels(window)
    start_value = float(s.value(np.array([[1.8, 0.0]]))[0])
    assert seen_near(window, rgb, (1.8, start_value), RED)
    x_curve = np.linspace(-1.8, 1.5, 7)
    on_curve = [(x, float(s.value(np.array([[x, 0.0]]))[0])) for x in x_curve]
    assert all(seen_near(window, rgb, p, CURVE_COLOR, 2) for p in on_curve)

    play_until(qtbot, window, lambda f: f.step[0] >= 80)
    press(qtbot, window, Qt.Key.Key_Space)  # pause, so the picture holds still
    qtbot.waitUntil(lambda: not window.packet.playing)
    wait_drawn(qtbot, window)
    f = window.packet.frame
    x_now = float(f.positions[0, 0])
    assert x_now < 1.2 and f.positions[0, 1] == 0.0  # it rolled down the x axis, on y = 0
    assert view.state.offset == pytest.approx(x_now)
    assert view.state.slope == pytest.approx(float(f.gradients[0, 0]))
    rgb = slice_pixels(window)
    window.slice_view.grab().save("/tmp/gdsim_shots/slice_theory_one_d.png")
    assert seen_near(window, rgb, (x_now, float(f.losses[0])), RED)
    assert not seen_near(window, rgb, (1.8, start_value), RED)
    assert np.all(window.trails.get(window.doc.ids[0]).positions[:, 1] == 0)


def test_choosing_a_one_d_function_puts_the_balls_on_its_row_and_undo_brings_all_back(
    make_window, qtbot
):
    window = make_window()
    starts = [tuple(r.start) for r in window.doc.runs]
    assert any(y != 0 for _, y in starts)
    combo = window.surface_panel.combo
    combo.setCurrentIndex(combo.findData("1d-parabola"))
    qtbot.waitUntil(lambda: window.doc.surface.name == "1d-parabola")
    assert [tuple(r.start) for r in window.doc.runs] == [(x, 0.0) for x, _ in starts]
    assert window._central.currentIndex() == 1 and window.slice_view.isVisible()
    wait_drawn(qtbot, window)
    assert np.all(window.packet.frame.positions[:, 1] == 0)
    # Play: the first ball rolls down the parabola, and the slice shows it there.
    x0 = float(window.packet.frame.positions[0, 0])
    color = window.doc.runs[0].color
    assert seen_near(window, slice_pixels(window), (x0, x0 * x0), color)
    play_until(qtbot, window, lambda f: f.step[0] >= 40 and abs(f.positions[0, 0]) < 0.7 * abs(x0))
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not window.packet.playing)
    wait_drawn(qtbot, window)
    f = window.packet.frame
    x1 = float(f.positions[0, 0])
    rgb = slice_pixels(window)
    assert seen_near(window, rgb, (x1, x1 * x1), color)
    assert not seen_near(window, rgb, (x0, x0 * x0), color)
    assert np.all(f.positions[:, 1] == 0)
    press(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.doc.surface.name == "two-wells")
    assert [tuple(r.start) for r in window.doc.runs] == starts
    assert window._central.currentIndex() == 0 and window.view3d.isVisible()
    assert window.docks["Slice"].widget() is window.slice_view
    window.docks["Slice"].raise_()
    qtbot.waitUntil(window.slice_view.isVisible)
    wait_drawn(qtbot, window)
    assert window.slice_view.direction_combo.isEnabled()
    assert window.slice_view.state is not None


def test_the_slice_dock_cuts_along_the_gradient_of_the_selected_ball(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path,
        {"name": "ravine", "params": {"kappa": 10.0}},
        [sgd("A", 0.01, (-2.0, 1.0), color=RED), sgd("B", 0.01, (1.0, -0.5))],
    )
    window = make_window(path)
    window.docks["Slice"].raise_()
    qtbot.waitUntil(window.slice_view.isVisible)
    window.readouts.selectRow(0)  # a click on its row of the readouts selects the ball
    assert window._selected_index() == 0
    wait_drawn(qtbot, window)
    view = window.slice_view
    view.direction_combo.setCurrentIndex(view.direction_combo.findData("gradient"))
    g = np.array([-2.0, 10.0])  # ∇ ½(x² + 10 y²) at (-2, 1)
    assert view.state.slope == pytest.approx(np.hypot(*g))
    assert f"<b>{np.hypot(*g):.6g}</b>" in view.readout.text()
    rgb = slice_pixels(window)
    assert seen_near(window, rgb, (0.0, 7.0), RED)  # f(-2, 1) = ½(4 + 10) = 7
    # Selecting the other run (a click on its readout row) moves the cut to that ball.
    window.readouts.selectRow(1)
    qtbot.waitUntil(lambda: view.state is not None and view.state.f0 == pytest.approx(1.75))
    g = np.array([1.0, -5.0])
    assert view.state.slope == pytest.approx(np.hypot(*g))


# ----------------------------------------------------------------------------------------------
def ravine_window(make_window, tmp_path, run, steps=600):
    path = write_scenario(tmp_path, {"name": "ravine", "params": {"kappa": 50.0}}, [run], steps)
    window = make_window(path)
    window.docks["Theory"].raise_()
    return window


def test_the_theory_dock_sets_the_optimal_lr_and_momentum_and_undo_restores(
    make_window, qtbot, tmp_path
):
    window = ravine_window(make_window, tmp_path, sgd("GD", 0.01, (-2.5, 1.0), color=RED))
    panel = window.theory_panel
    qtbot.waitUntil(lambda: panel.optimal is not None)
    best = theory.quadratic_theory(np.diag([1.0, 50.0]))
    assert panel.kappa_label.text() == "50"
    assert f"{best.hb_lr:.4g}" in panel.hb_label.text()
    assert f"{best.hb_momentum:.4g}" in panel.hb_label.text()
    assert panel.quadratic_box.isVisible()
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    assert group_edit(window, "lr").text() == format_number(best.hb_lr)
    assert group_edit(window, "momentum").text() == format_number(best.hb_momentum)
    assert window.doc.runs[0].params["lr"] == best.hb_lr
    press(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert group_edit(window, "lr").text() == "0.01"
    assert group_edit(window, "momentum").text() == "0"
    assert window.doc.runs[0].params["lr"] == 0.01


def test_predicted_and_measured_rates_agree_and_the_loss_plot_shows_the_prediction(
    make_window, qtbot, tmp_path
):
    run = sgd("GD", 0.01, (-2.5, 1.0), color=RED)
    window = ravine_window(make_window, tmp_path, run, steps=150)
    panel = window.theory_panel
    qtbot.waitUntil(lambda: panel.optimal is not None)
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    play_until(qtbot, window, lambda f: f.step[0] >= 150)  # the budget: it pauses there
    qtbot.waitUntil(lambda: not window.packet.playing)
    window._drawn_packet = None
    wait_drawn(qtbot, window)
    predicted = float(panel.predicted_label.text().split()[0])
    measured = float(panel.measured_label.text().split()[0])
    assert predicted == pytest.approx(panel.optimal.hb_rate, rel=1e-3)
    assert measured == pytest.approx(predicted, rel=0.03)
    line = window.loss_plot.prediction()
    assert line is not None and len(line) >= 150
    assert line[100] == pytest.approx(line[0] * predicted ** (2 * 100), rel=1e-3)
    image = window.loss_plot.grab().toImage()
    image.save("/tmp/gdsim_shots/slice_theory_loss_prediction.png")
    assert color_mask(image, PREDICTION_COLOR, tol=30).sum() > 60


def test_an_adam_run_is_offered_a_switch_to_sgd(make_window, qtbot, tmp_path):
    run = {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.1}, "start": [-2.5, 1.0]}
    window = ravine_window(make_window, tmp_path, run)
    panel = window.theory_panel
    qtbot.waitUntil(lambda: panel.optimal is not None)
    assert panel.use_button.text().startswith("Switch to SGD")
    assert "SGD" in panel.predicted_label.text()  # no prediction for Adam, and it says why
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    group = window.runs_panel.groups[window.doc.ids[0]]
    assert group.optimizer_combo.currentData() == "sgd"
    assert group_edit(window, "momentum").text() == format_number(panel.optimal.hb_momentum)
    press(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.runs[0].optimizer == "adam"
    assert group.optimizer_combo.currentData() == "adam"


def test_no_optimal_settings_where_the_surface_is_not_quadratic(make_window, qtbot):
    window = make_window()  # two-wells
    window.docks["Theory"].raise_()
    panel = window.theory_panel
    qtbot.waitUntil(lambda: panel.run_label.text() == window.doc.runs[0].label)
    assert not panel.quadratic_box.isVisible() and panel.optimal is None
    assert "not quadratic" in panel.note.text()
    assert window.loss_plot.prediction() is None
    assert math.isfinite(panel.ceiling)


# ----------------------------------------------------------------------------------------------
def amber_pixels(edit) -> int:
    return int(color_mask(edit.grab().toImage(), "#ffe8b0", tol=12).sum())


def test_the_lr_entry_turns_amber_above_the_ceiling_and_clears_below(make_window, qtbot, tmp_path):
    path = write_scenario(tmp_path, {"name": "bowl"}, [sgd("GD", 0.1, (1.2, 0.8), color=RED)])
    window = make_window(path)
    edit = group_edit(window, "lr")
    assert edit.warning() == "" and amber_pixels(edit) == 0
    # The bowl's Hessian is 2I everywhere: 2/λmax = 1.
    type_into(qtbot, edit, "1.5")
    qtbot.waitUntil(lambda: edit.warning() != "")
    assert edit.warning().startswith("lr 1.5 is above 2/λmax = 1 here")
    assert edit.toolTip() == edit.warning()
    assert amber_pixels(edit) > 100
    edit.grab().save("/tmp/gdsim_shots/slice_theory_lr_warning.png")
    assert "2/λmax = 1" in window.status_ceiling.text()
    type_into(qtbot, edit, "0.5")
    qtbot.waitUntil(lambda: edit.warning() == "")
    assert amber_pixels(edit) == 0
    assert "above" not in edit.toolTip()


def test_the_lr_warning_follows_the_ball_where_curvature_changes(make_window, qtbot, tmp_path):
    # On the narrow well 2/f'' is ~0.066 at the bottom but ~10 in the wide bowl: lr 0.3 is
    # fine where the ball starts and too high once it falls into the well.
    s = surfaces.get("1d-narrow-well")
    here = theory.lr_ceiling(s.hessian(np.array([-1.5, 0.0]))[:1, :1])
    assert here > 0.3
    path = write_scenario(
        tmp_path, {"name": "1d-narrow-well"}, [sgd("GD", 0.3, (-1.5, 0.0), color=RED)]
    )
    window = make_window(path)
    edit = group_edit(window, "lr")
    wait_drawn(qtbot, window)
    assert edit.warning() == ""
    window.step_once()
    window.step_once()
    qtbot.waitUntil(lambda: window.packet.frame.step[0] >= 2)
    # Step until the ball is in the well's steep walls (x near 0), where f'' is large.
    for _ in range(40):
        x = float(window.packet.frame.positions[0, 0])
        if abs(x) < 0.15:
            break
        k = int(window.packet.frame.step[0])
        window.step_once()
        qtbot.waitUntil(lambda k=k: window.packet.frame.step[0] > k)
    wait_drawn(qtbot, window)
    x = float(window.packet.frame.positions[0, 0])
    assert abs(x) < 0.15  # GD with lr 0.3 lands in the well on its 7th step
    ceiling = theory.lr_ceiling(s.hessian(np.array([x, 0.0]))[:1, :1])
    assert ceiling < 0.3
    qtbot.waitUntil(lambda: edit.warning() != "")
    assert edit.warning().startswith(f"lr 0.3 is above 2/λmax = {ceiling:.3g} here")
    assert amber_pixels(edit) > 100


def test_optimal_settings_mid_run_are_measured_from_the_step_they_took_over(
    make_window, qtbot, tmp_path
):
    # Plain GD zig-zags for 60 steps; then "Use optimal" and 200 more steps of heavy ball.
    run = sgd("GD", 0.035, (-2.5, 1.0), color=RED)
    window = ravine_window(make_window, tmp_path, run, steps=60)
    panel = window.theory_panel
    play_until(qtbot, window, lambda f: f.step[0] == 60 and not window.packet.playing)
    wait_drawn(qtbot, window)
    gd_measured = float(panel.measured_label.text().split()[0])
    assert gd_measured == pytest.approx(theory.gd_rate([1.0, 50.0], 0.035), rel=0.03)
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    window.playback.budget.setValue(260)
    window.playback.budget.editingFinished.emit()
    play_until(qtbot, window, lambda f: f.step[0] == 260 and not window.packet.playing)
    window._drawn_packet = None
    wait_drawn(qtbot, window)
    measured = float(panel.measured_label.text().split()[0])
    assert measured == pytest.approx(panel.optimal.hb_rate, rel=0.03)  # not a blend with GD's
    first = window.loss_plot._prediction_first
    assert 60 <= first <= 62  # the line starts where the new settings took over
    losses = window.trails.get(window.doc.ids[0]).losses
    assert window.loss_plot.prediction()[0] == pytest.approx(losses[first])


def test_a_1d_function_shows_every_ball_and_its_iterates_on_the_curve(make_window, qtbot, tmp_path):
    """For f(x) the slice is the main view: all balls sit on the curve in their colours, and
    each one's recent iterates are drawn, so a step that jumps over the well is seen."""
    green, blue = "#00c000", "#2050ff"
    path = write_scenario(
        tmp_path,
        {"formula": "0.1*(x - 1.5)^2 - 1.5*exp(-10*x^2)", "box": [[-2.5, 3.5], [-1, 1]]},
        [
            sgd("settles", 0.05, (-1.5, 0.0), color=RED),
            sgd("jumps", 0.3, (-1.5, 0.0), color=blue),
            sgd("hidden", 0.05, (2.5, 0.0), color=green),
        ],
    )
    window = make_window(path)
    window.doc.edit_run(window.doc.ids[2], {"visible": False})
    play_until(qtbot, window, lambda fr: fr.step.max() >= 25)
    press(qtbot, window, Qt.Key.Key_Space)  # pause
    wait_drawn(qtbot, window)
    window._drawn_packet = None
    wait_drawn(qtbot, window)
    s = window.doc.surface
    f = window.packet.frame
    rgb = slice_pixels(window)
    for k, color in ((0, RED), (1, blue)):
        x = f.positions[k, 0]
        assert seen_near(window, rgb, (x, float(s.value(f.positions[k]))), color), color
    # the jumping ball's iterates: dots where it has been, on both sides of the well
    xs = window.trails.get(window.doc.ids[1]).positions[-40:, 0]
    assert xs.min() < 0 < xs.max()
    assert seen_near(window, rgb, (xs[0], float(s.value(np.array([xs[0], 0.0])))), blue)
    # the hidden ball is not drawn
    x2 = f.positions[2]
    assert not seen_near(window, rgb, (x2[0], float(s.value(x2))), green)


def test_exporting_a_view_of_a_1d_function_saves_the_curve(make_window, qtbot, tmp_path):
    """The curve is the main view for f(x): Ctrl+E's export saves it (the 3-D view and the
    contour map are not on screen), at the width asked for, with the curve's colour in it."""
    from PySide6.QtGui import QImage

    path = write_scenario(
        tmp_path,
        {"formula": "0.1*(x - 1.5)^2 - 1.5*exp(-10*x^2)", "box": [[-2.5, 3.5], [-1, 1]]},
        [sgd("a", 0.05, (-1.5, 0.0), color=RED)],
    )
    window = make_window(path)
    out = tmp_path / "curve.png"
    assert window.export_image("3d", out, (1600, 900))
    image = QImage(str(out))
    assert image.width() == 1600
    assert color_mask(image, CURVE_COLOR, 40).sum() > 500  # the curve f(x)
    assert color_mask(image, RED, 60).sum() > 30  # the ball on it
