"""The NN surfaces in the window: the data panel's fits, the batch-size control, the mini-batch
contours. Driven by keys and typed values, checked by the pixels a person sees."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from gdsim.ui.panels.runs import FULL_BATCH, NO_DATA_TIP
from tests.ui.conftest import color_array, color_mask, show_widget, wait_drawn

MAGENTA = "#ff00ff"


def write(tmp_path, surface, runs, steps=100000):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"gdsim": 1, "surface": surface, "steps": steps, "runs": runs}))
    return path


def run(start, lr=0.05, color=MAGENTA, **extra):
    return {"optimizer": "sgd", "params": {"lr": lr}, "start": list(start), "color": color, **extra}


def press(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier):
    window.loss_plot.setFocus()
    qtbot.keyClick(window.loss_plot, key, modifier)


def pause(qtbot, window):
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not window.packet.playing, timeout=10000)
    wait_drawn(qtbot, window)


def plot_pixels(plot, points: np.ndarray) -> np.ndarray:
    """Image pixel coordinates (n, 2) of data points (n, 2) in a pyqtgraph PlotWidget."""
    vb = plot.getViewBox()
    ratio = plot.devicePixelRatioF()
    out = []
    for x, y in points:
        p = plot.mapFromScene(vb.mapViewToScene(QPointF(float(x), float(y))))
        out.append((p.x() * ratio, p.y() * ratio))
    return np.array(out)


def near_color(mask: np.ndarray, pixels: np.ndarray, radius: int = 3) -> np.ndarray:
    """For each pixel (x, y): is there a masked pixel within `radius`?"""
    h, w = mask.shape
    out = []
    for x, y in np.round(pixels).astype(int):
        box = mask[
            max(y - radius, 0) : min(y + radius + 1, h), max(x - radius, 0) : min(x + radius + 1, w)
        ]
        out.append(bool(box.any()))
    return np.array(out)


def test_choosing_nn_logistic_and_playing_moves_the_fit_curve(make_window, qtbot, tmp_path):
    window = make_window(write(tmp_path, {"name": "bowl"}, [run((-1.5, 1.5), lr=2.0)]))
    panel = window.data_panel
    assert not window.doc.surface.data and panel.message.isVisibleTo(panel)
    combo = window.surface_panel.combo
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_End)  # "Custom formula" is last
    for _ in range(combo.count() - 1 - combo.findData("nn-logistic")):
        qtbot.keyClick(combo, Qt.Key.Key_Up)
    assert combo.currentData() == "nn-logistic"
    assert window.doc.surface.name == "nn-logistic"
    data = window.doc.surface.data
    assert data is not None and data.kind == "logistic"
    qtbot.waitUntil(lambda: window.docks["Data"].widget().isVisible(), timeout=5000)
    assert not panel.message.isVisible() and panel.plot.isVisible()
    wait_drawn(qtbot, window)
    plot = panel.plot
    before = color_mask(plot.grab().toImage(), MAGENTA, 60)
    assert before.sum() > 100  # the model of the ball at its start is drawn

    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.packet.frame.step[0] >= 40, timeout=15000)
    pause(qtbot, window)
    image = plot.grab().toImage()
    after = color_mask(image, MAGENTA, 60)
    assert (before != after).sum() > 200  # the curve moved
    # The curve drawn is the model at the ball's position: σ(w·u + b) with (w, b) = the ball.
    w, b = window.packet.frame.positions[0]
    us = np.linspace(-2.5, 2.5, 15)
    curve = plot_pixels(plot, np.column_stack([us, data.predict(w, b, us)]))
    assert near_color(after, curve).all()
    start_curve = plot_pixels(plot, np.column_stack([us, data.predict(-1.5, 1.5, us)]))
    assert not near_color(after, start_curve[:4]).all()  # no longer the start's model
    # Two classes in two colours.
    rgb = color_array(image)
    assert (
        color_mask(image, "#cfcfcf", 25).sum() > 50 and color_mask(image, "#c07040", 25).sum() > 50
    )
    assert rgb.shape[0] > 50
    image.save(str(tmp_path / "data_panel.png"))


def test_a_surface_without_data_explains_itself(make_window, qtbot):
    window = make_window()
    window.docks["Data"].raise_()
    panel = window.data_panel
    qtbot.waitUntil(panel.isVisible, timeout=5000)
    assert panel.message.isVisible() and not panel.plot.isVisible()
    assert "No data on this surface" in panel.message.text()
    image = panel.grab().toImage()
    text = np.all(color_array(image) < 90, axis=2)  # dark text on the panel's light ground
    assert text.sum() > 200
    group = window.runs_panel.groups[window.doc.ids[0]]
    assert not group.batch_spin.isEnabled()
    assert group.batch_spin.toolTip() == NO_DATA_TIP
    assert group.batch_spin.text() == FULL_BATCH


def test_batch_size_typed_changes_the_run_and_undo_restores_it(make_window, qtbot, tmp_path):
    path = write(tmp_path, {"name": "nn-linear"}, [run((-1.0, 1.5))])
    window = make_window(path)
    group = window.runs_panel.groups[window.doc.ids[0]]
    spin = group.batch_spin
    assert spin.isEnabled() and spin.maximum() == 64 and spin.text() == FULL_BATCH
    assert "64 data points" in spin.toolTip()
    assert window.packet.frame.batches == (None,)
    assert len(window.data_panel.ringed()) == 0

    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "8")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert window.doc.runs[0].batch_size == 8
    qtbot.waitUntil(lambda: window.packet.frame.batches[0] is not None, timeout=10000)
    wait_drawn(qtbot, window)
    batch = window.packet.frame.batches[0]
    assert len(batch) == 8
    data = window.doc.surface.data
    ringed = window.data_panel.ringed()
    np.testing.assert_array_equal(ringed, np.column_stack([data.x[batch], data.y[batch]]))
    # The rings are on screen, in the run's colour, around those points.
    window.docks["Data"].raise_()
    qtbot.waitUntil(window.data_panel.plot.isVisible, timeout=5000)
    plot = window.data_panel.plot
    mask = color_mask(plot.grab().toImage(), MAGENTA, 60)
    ring_px = plot_pixels(plot, ringed)
    ring_px[:, 0] += 7 * plot.devicePixelRatioF()  # a ring's edge, 7 px right of its centre
    assert near_color(mask, ring_px, 2).mean() >= 0.75  # a few may sit under the curve's end

    press(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.runs[0].batch_size is None
    assert spin.text() == FULL_BATCH
    qtbot.waitUntil(lambda: window.packet.frame.batches[0] is None, timeout=10000)
    wait_drawn(qtbot, window)
    assert len(window.data_panel.ringed()) == 0


def test_a_batch_size_set_mid_run_keeps_the_ball_and_the_next_step_uses_the_batch(
    make_window, qtbot, tmp_path
):
    lr = 0.05
    window = make_window(write(tmp_path, {"name": "nn-linear"}, [run((-1.0, 1.5), lr=lr)]))
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.packet.frame.step[0] >= 10, timeout=10000)
    pause(qtbot, window)
    frame = window.packet.frame
    step, where = int(frame.step[0]), frame.positions[0].copy()
    spin = window.runs_panel.groups[window.doc.ids[0]].batch_spin
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "5")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.packet.frame.batches[0] is not None, timeout=10000)
    frame = window.packet.frame
    assert int(frame.step[0]) == step  # a live edit: no restart
    np.testing.assert_array_equal(frame.positions[0], where)
    batch = frame.batches[0]
    press(qtbot, window, Qt.Key.Key_Right)  # one step
    qtbot.waitUntil(lambda: int(window.packet.frame.step[0]) == step + 1, timeout=10000)
    s = window.doc.surface
    expected = where - lr * s.batch_gradient(where, batch)
    np.testing.assert_allclose(window.packet.frame.positions[0], expected, rtol=1e-14)
    assert not np.allclose(expected, where - lr * s.gradient(where), rtol=1e-9)


def test_the_mini_batch_contours_appear_when_toggled(make_window, qtbot, tmp_path):
    path = write(tmp_path, {"name": "nn-linear"}, [run((-1.0, 1.5), batch_size=4)])
    window = make_window(path)
    assert not window.act_batch_contours.isChecked()
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert window.act_batch_contours in view_menu.actions()
    contour = window.contour
    off = color_mask(contour.grab().toImage(), MAGENTA, 60).sum()  # the ball and start marker
    press(qtbot, window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert window.act_batch_contours.isChecked()
    qtbot.waitUntil(lambda: window._drawn_packet is window.packet, timeout=5000)
    qtbot.wait(50)
    image = contour.grab().toImage()
    on = color_mask(image, MAGENTA, 60)
    assert on.sum() > off + 400  # dashed level lines in the run's colour
    image.save(str(tmp_path / "contour_batch.png"))
    # They are the batch's surface, not the full one: its minimum is elsewhere.
    batch = window.packet.frame.batches[0]
    s = window.doc.surface
    best = s.minima[0]
    assert np.linalg.norm(s.batch_gradient(best, batch)) > 1e-3
    # A step moves to the next batch: the lines change.
    press(qtbot, window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.packet.frame.step[0] == 1, timeout=10000)
    wait_drawn(qtbot, window)
    qtbot.wait(50)
    moved = color_mask(contour.grab().toImage(), MAGENTA, 60)
    assert (moved != on).sum() > 200
    press(qtbot, window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window._drawn_packet is window.packet, timeout=5000)
    window._drawn_packet = None
    qtbot.waitUntil(lambda: window._drawn_packet is window.packet, timeout=5000)
    hidden = color_mask(contour.grab().toImage(), MAGENTA, 60).sum()
    assert hidden < off + 200


@pytest.mark.parametrize("name", ["nn-minibatch", "nn-tanh-mirror"])
def test_shipped_nn_scenarios_open_with_the_data_dock_raised(make_window, qtbot, name):
    from pathlib import Path

    from gdsim.scenario import shipped_path

    window = make_window(Path(shipped_path(name)))
    assert window.doc.surface.data is not None
    qtbot.waitUntil(window.data_panel.plot.isVisible, timeout=5000)
    # Runs from one start (or mirrored starts: the same network) share one curve; the last is
    # drawn on top, in its colour.
    mask = color_mask(window.data_panel.plot.grab().toImage(), window.doc.runs[-1].color, 50)
    assert mask.sum() > 50


def test_a_new_data_seed_typed_in_the_surface_panel_redraws_the_data(
    make_window, qtbot, tmp_path, no_dialogs
):
    window = make_window(write(tmp_path, {"name": "nn-tanh"}, [run((-2.5, 0.5))]))
    qtbot.waitUntil(window.data_panel.plot.isVisible, timeout=5000)
    plot = window.data_panel.plot
    before = color_mask(plot.grab().toImage(), "#cfcfcf", 25)
    old = window.doc.surface
    edit = window.surface_panel.findChild(
        type(window.surface_panel.box_edits[0]), "surface_param_seed"
    )
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "5")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert window.doc.surface_spec["params"]["seed"] == 5.0
    assert window.doc.surface.data.seed == 5 and window.doc.surface is not old
    wait_drawn(qtbot, window)
    after = color_mask(plot.grab().toImage(), "#cfcfcf", 25)
    assert (before != after).sum() > 100  # other points
    assert "data seed 5" in window.data_panel.caption.text()
    # A seed that is not a whole number is refused and changes nothing.
    assert window.surface_panel.findChild(type(edit), "surface_param_seed") is edit  # kept
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "2.5")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert window.doc.surface.data.seed == 5
    assert any("whole number" in w for w in no_dialogs)


def test_the_panel_alone_hides_what_cannot_be_drawn(qtbot):
    from gdsim.engine import surfaces
    from gdsim.ui.panels.data import DataPanel, batch_run

    panel = show_widget(qtbot, DataPanel(), 500, 300)
    s = surfaces.get("nn-linear")
    positions = np.array([[1.0, 0.0], [np.nan, np.nan], [2.0, -1.0]])
    batches = (None, np.array([1, 2]), np.array([3, 4, 5]))
    colors = ["#ff0000", "#00ff00", "#0000ff"]
    panel.update_runs(s, positions, colors, [True, True, False], batches, selected=None)
    image = panel.plot.grab().toImage()
    assert color_mask(image, "#ff0000", 40).sum() > 50  # a finite, visible run: drawn
    assert color_mask(image, "#0000ff", 40).sum() == 0  # hidden run: not drawn
    # The NaN run draws no curve, but its batch is the first visible one: ringed in green.
    assert color_mask(image, "#00ff00", 40).sum() > 10
    assert len(panel.ringed()) == 2
    assert batch_run(2, [True, True, False], batches) == 1  # a hidden selection falls back
    assert batch_run(None, [True, False, False], batches) is None
    panel.update_runs(surfaces.get("bowl"), positions, colors, [True] * 3, batches, None)
    assert panel.message.isVisible() and not panel.has_data()


def test_the_slice_and_the_explainer_show_the_mini_batch(make_window, qtbot, tmp_path):
    """The next mini-batch's loss is drawn dashed in the Slice view beside the full loss (and
    not for a full-batch run), and Explain step names the batch and lands where the engine
    does."""
    from gdsim.ui.views.slice_1d import BATCH_COLOR

    path = write(tmp_path, {"name": "nn-linear"}, [run((-1.0, 1.5), batch_size=4)])
    window = make_window(path)
    view = window.slice_view
    qtbot.waitUntil(lambda: window.packet.frame.batches[0] is not None, timeout=10000)
    window._drawn_packet = None
    wait_drawn(qtbot, window)
    assert view.batch_curve.isVisible()
    s, z = view.batch_curve.getData()
    batch = window.packet.frame.batches[0]
    surface = window.doc.surface
    # the dashed curve is the batch's loss along the cut through the ball (along x, drawn
    # against x itself)
    p = window.packet.frame.positions[0]
    points = np.stack([s, np.full_like(s, p[1])], axis=1)
    np.testing.assert_allclose(z, surface.batch_value(points, batch), rtol=1e-12)
    assert color_mask(view.grab().toImage(), BATCH_COLOR, 30).sum() > 100

    # Explain step (E): the caption names the mini-batch; Apply lands where the engine would.
    press(qtbot, window, Qt.Key.Key_E)
    panel = window.explainer.panel
    qtbot.waitUntil(
        lambda: "mini-batch gradient over 4 of the" in panel.caption.text(), timeout=10000
    )

    # A full-batch run draws no batch curve.
    window.doc.edit_run(window.doc.ids[0], {"batch_size": None})
    qtbot.waitUntil(lambda: window.packet.frame.batches[0] is None, timeout=10000)
    window._drawn_packet = None
    wait_drawn(qtbot, window)
    assert not view.batch_curve.isVisible()


def test_an_nn_surface_formula_line_is_a_description_not_an_edit(make_window, qtbot, tmp_path):
    window = make_window(write(tmp_path, {"name": "nn-logistic"}, [run((0.5, 0.5))]))
    panel = window.surface_panel
    assert panel.formula.isReadOnly() and "data set" in panel.formula.toolTip()
    panel.formula.setFocus()
    qtbot.keyClicks(panel.formula, "x^2")
    qtbot.keyClick(panel.formula, Qt.Key.Key_Return)
    assert window.doc.surface.name == "nn-logistic" and panel.formula_error_text() == ""
    # "Custom formula" opens the line for typing
    combo = panel.combo
    combo.setCurrentIndex(combo.findData("custom"))
    assert not panel.formula.isReadOnly() and panel.formula.text() == ""
    qtbot.keyClicks(panel.formula, "x^2 + y^2")
    qtbot.keyClick(panel.formula, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.doc.surface.data is None, timeout=5000)
    assert window.doc.surface.formula == "x^2 + y^2"
