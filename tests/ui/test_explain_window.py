"""Seeing the mathematics on the map: the downhill field, the effective-step boxes and the
step-by-step explainer, driven through the real window and checked by pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from gdsim.engine.explain import fmt_vec
from gdsim.ui.views.contour_2d import BOX_COLOR, EXPLAIN_COLORS
from tests.ui.conftest import color_array, wait_drawn

pytestmark = pytest.mark.gl  # the window's 3-D view needs Xvfb


def write_scenario(tmp_path, surface, runs, steps=400):
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps({"gdsim": 1, "surface": surface, "steps": steps, "seed": 0, "runs": runs})
    )
    return path


def run(label, optimizer, params, start, color, noise=0.0):
    return {
        "label": label,
        "optimizer": optimizer,
        "params": params,
        "start": list(start),
        "color": color,
        "noise": noise,
    }


def shot(view, name):
    image = view.grab().toImage()
    image.save(f"/tmp/gdsim_shots/{name}.png") if _shots() else None
    return color_array(image), view.devicePixelRatioF()


def _shots() -> bool:
    import os

    os.makedirs("/tmp/gdsim_shots", exist_ok=True)
    return True


def near(rgb, color, tol=30):
    from PySide6.QtGui import QColor

    c = QColor(color)
    return np.all(np.abs(rgb - np.array([c.red(), c.green(), c.blue()])) <= tol, axis=2)


def light(rgb):
    """Light grey pixels (the field's strokes and their antialiased edges are bright, grey)."""
    return (rgb.min(axis=2) > 150) & (rgb.max(axis=2) - rgb.min(axis=2) < 40)


def pixels_around(mask, ratio, px, py, r):
    """How many mask pixels lie within r widget pixels of (px, py)."""
    ys, xs = np.nonzero(mask)
    return int(((xs / ratio - px) ** 2 + (ys / ratio - py) ** 2 <= r * r).sum())


def press(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier):
    window.loss_plot.setFocus()
    qtbot.keyClick(window.loss_plot, key, modifier)


def step(qtbot, window, n):
    for _ in range(n):
        k = int(window.packet.frame.step.max())
        press(qtbot, window, Qt.Key.Key_Right)
        qtbot.waitUntil(lambda k=k: int(window.packet.frame.step.max()) == k + 1, timeout=5000)
    wait_drawn(qtbot, window)


def toggle(qtbot, window, action):
    action.trigger()
    window._drawn_packet = None
    wait_drawn(qtbot, window)
    QApplication.processEvents()


# ----------------------------------------------------------------------------------------
def test_gradient_field_appears_and_disappears_from_the_view_menu(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path, {"name": "bowl"}, [run("GD", "sgd", {"lr": 0.05}, (1.5, 1.5), "#ff0000")]
    )
    window = make_window(path)
    contour = window.contour
    act = window.explainer.act_field
    view_menu = next(m.menu() for m in window.menuBar().actions() if m.text() == "&View")
    assert act in view_menu.actions()
    assert "downhill" in act.toolTip()
    before, ratio = shot(contour, "explain_field_off")
    toggle(qtbot, window, act)
    after, _ = shot(contour, "explain_field_on")
    grey_before, grey_after = light(before).sum(), light(after).sum()
    assert grey_after > grey_before + 500  # many light-grey arrow strokes appeared
    # downhill: right of the minimum the arrows point left (towards smaller x), so their
    # heads, two extra strokes, put more new light pixels left of a node than right of it
    mask = light(after) & ~light(before)
    x = window.explainer.field_nodes()[0]
    node = x[np.argmin(np.abs(x - 1.6))]
    (cx, _), (lx, ly), (rx, ry) = contour.data_to_widget(
        np.array([[node, 0.0], [node - 0.06, 0.0], [node + 0.06, 0.0]])
    )
    r = abs(rx - cx)
    left, right = pixels_around(mask, ratio, lx, ly, r), pixels_around(mask, ratio, rx, ry, r)
    assert left > right >= 1
    assert (
        QSettings().value("view/map_overlays")
        and json.loads(QSettings().value("view/map_overlays"))["field"]
    )
    assert "downhill" in contour._legend.text() and contour._legend.isVisible()
    # remembered: a new window starts with the field shown
    second = make_window(path)
    assert second.explainer.act_field.isChecked() and second.contour.gradient_field_visible()
    second.close()
    toggle(qtbot, window, act)
    off, _ = shot(contour, "explain_field_off_again")
    assert light(off).sum() <= grey_before + 50
    assert not contour._legend.isVisible()


def test_effective_step_boxes_beside_adam_and_not_sgd(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path,
        {"name": "ravine"},
        [
            run("Adam", "adam", {"lr": 0.1}, (-1.5, 1.0), "#ff0000"),
            run("GD", "sgd", {"lr": 0.02}, (1.5, 1.0), "#3060ff"),
        ],
    )
    window = make_window(path)
    contour = window.contour
    step(qtbot, window, 4)
    before, ratio = shot(contour, "explain_boxes_off")
    toggle(qtbot, window, window.explainer.act_boxes)
    qtbot.waitUntil(lambda: len(window.packet.internals) == 2, timeout=5000)
    window._drawn_packet = None
    wait_drawn(qtbot, window)
    after, _ = shot(contour, "explain_boxes_on")
    internals = window.packet.internals
    assert internals[0] is not None and internals[1] is None  # Adam has one, SGD none
    # Adam's first moves: every axis steps about lr, whatever its gradient
    np.testing.assert_allclose(internals[0].step_size, 0.1, rtol=0.2)
    new = near(after, BOX_COLOR, 40) & ~near(before, BOX_COLOR, 40)
    adam, gd = window.packet.frame.positions
    scale = contour._box_scale
    half = internals[0].step_size * scale
    corner = contour.data_to_widget(np.array([adam + half, adam - half]))
    gx, gy = contour.data_to_widget(gd[None])[0]
    for px, py in corner:
        assert pixels_around(new, ratio, px, py, 5) > 3  # the box's corners are drawn
    assert pixels_around(new, ratio, gx, gy, 40) == 0  # nothing beside the SGD ball
    assert f"effective step (×{scale:.3g})" in contour._legend.text()


def test_explain_next_and_apply_lands_where_it_said(make_window, qtbot, tmp_path):
    path = write_scenario(
        tmp_path,
        {"name": "bowl"},
        [
            run("Momentum", "sgd", {"lr": 0.05, "momentum": 0.9}, (1.5, 1.2), "#ff0000"),
            run("Adam", "adam", {"lr": 0.05}, (-1.5, -1.0), "#3060ff", noise=0.5),
        ],
    )
    window = make_window(path)
    contour, panel = window.contour, window.explainer.panel
    step(qtbot, window, 3)
    window._select(window.doc.ids[0])
    wait_drawn(qtbot, window)
    before, ratio = shot(contour, "explain_before")
    press(qtbot, window, Qt.Key.Key_E)  # "Explain step"
    qtbot.waitUntil(lambda: panel.explanation() is not None, timeout=5000)
    assert window.docks["Explain"].isVisible()
    ex = panel.explanation()
    assert ex.optimizer == "sgd" and ex.step == 4
    titles = [s.title for s in ex.stages]
    assert titles == [
        "Gradient", "Keep velocity", "Add gradient", "Step", "New position"
    ]  # fmt: skip
    # the caption shown is the first stage, with this step's gradient
    frame = window.packet.frame
    assert fmt_vec(frame.gradients[0]) in panel.caption.text()
    QApplication.processEvents()
    first, _ = shot(contour, "explain_stage_gradient")
    white = near(first, EXPLAIN_COLORS["gradient"], 20) & ~near(before, "#ffffff", 20)
    assert white.sum() > 20  # the gradient arrow is drawn
    # Next (key ".") three times: the Step stage draws a magenta step arrow from the ball
    for k in range(3):
        press(qtbot, window, Qt.Key.Key_Period)
        assert panel.stage() == k + 1
    QApplication.processEvents()
    assert "step −γb = −0.05 ×" in panel.caption.text()
    step_img, _ = shot(contour, "explain_stage_step")
    magenta = near(step_img, EXPLAIN_COLORS["step"], 30) & ~near(before, EXPLAIN_COLORS["step"], 30)
    _, mag = contour.explanation_shown()
    tip = ex.position + ex.delta * mag
    (tx, ty), (ox, oy) = contour.data_to_widget(np.array([tip, ex.position]))
    assert pixels_around(magenta, ratio, tx, ty, 6) > 3
    assert pixels_around(magenta, ratio, (tx + ox) / 2, (ty + oy) / 2, 6) > 3
    # Apply is offered only at the last stage
    assert not panel.apply_button.isEnabled()
    qtbot.mouseClick(panel.prev_button, Qt.MouseButton.LeftButton)
    assert panel.stage() == 2
    qtbot.mouseClick(panel.next_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.next_button, Qt.MouseButton.LeftButton)
    assert panel.at_last_stage() and panel.apply_button.isEnabled()
    assert fmt_vec(ex.new_position) in panel.caption.text()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: int(window.packet.frame.step[0]) == 4, timeout=5000)
    wait_drawn(qtbot, window)
    landed = window.packet.frame.positions[0]
    np.testing.assert_array_equal(landed, ex.new_position)  # exactly, to the last bit
    assert "Step applied" in panel.caption.text()
    assert contour.explanation_shown() is None
    # the red ball is drawn at the explained position
    after, _ = shot(contour, "explain_applied")
    red = near(after, "#ff0000", 60)
    bx, by = contour.data_to_widget(ex.new_position[None])[0]
    assert pixels_around(red, ratio, bx, by, 4) > 8


def test_explaining_a_noisy_adam_run_and_a_stale_explanation_is_cleared(
    make_window, qtbot, tmp_path
):
    path = write_scenario(
        tmp_path,
        {"name": "bowl"},
        [
            run("GD", "sgd", {"lr": 0.05}, (1.5, 1.2), "#ff0000"),
            run("Adam", "adam", {"lr": 0.05}, (-1.5, -1.0), "#3060ff", noise=0.5),
        ],
    )
    window = make_window(path)
    panel = window.explainer.panel
    step(qtbot, window, 2)
    panel.run_combo.setCurrentIndex(1)
    panel.run_combo.activated.emit(1)
    qtbot.mouseClick(panel.explain_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.explanation() is not None, timeout=5000)
    ex = panel.explanation()
    assert ex.optimizer == "adam" and "noise" in ex.stages[0].caption
    for _ in range(len(ex.stages) - 1):
        panel.next_stage()
    panel.apply()
    qtbot.waitUntil(lambda: int(window.packet.frame.step[1]) == 3, timeout=5000)
    wait_drawn(qtbot, window)
    # the noisy gradient the explanation used is the one the step used
    np.testing.assert_allclose(window.packet.frame.positions[1], ex.new_position, rtol=1e-12)
    # explain again, then change the run's learning rate: the explanation is dropped
    qtbot.mouseClick(panel.explain_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.explanation() is not None, timeout=5000)
    QApplication.processEvents()
    assert window.contour.explanation_shown() is not None
    group = window.runs_panel.groups[window.doc.ids[1]]
    edit = group.params_editor.editor("lr").edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "0.2")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: panel.explanation() is None, timeout=5000)
    assert window.contour.explanation_shown() is None
    assert "cleared" in panel.caption.text()


def test_a_diverged_run_is_not_explained_and_reset_clears_an_explanation(
    make_window, qtbot, tmp_path
):
    path = write_scenario(
        tmp_path,
        {"name": "bowl"},
        [
            run("Wild", "sgd", {"lr": 1.5}, (1.5, 1.2), "#ff0000"),
            run("Calm", "sgd", {"lr": 0.05}, (-1.5, -1.0), "#3060ff"),
        ],
    )
    window = make_window(path)
    panel = window.explainer.panel
    press(qtbot, window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.packet.frame.status[0].value == "diverged", timeout=10000)
    press(qtbot, window, Qt.Key.Key_Space)
    wait_drawn(qtbot, window)
    panel.run_combo.setCurrentIndex(0)
    panel.run_combo.activated.emit(0)
    press(qtbot, window, Qt.Key.Key_E)
    qtbot.waitUntil(lambda: "diverged" in panel.caption.text(), timeout=5000)
    assert panel.explanation() is None and not panel.next_button.isEnabled()
    assert not window._playing()
    # the calm run is explained; a reset (R) then makes the explanation stale: cleared
    panel.run_combo.setCurrentIndex(1)
    panel.run_combo.activated.emit(1)
    press(qtbot, window, Qt.Key.Key_E)
    qtbot.waitUntil(lambda: panel.explanation() is not None, timeout=5000)
    assert panel.explanation().step > 1
    press(qtbot, window, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: panel.explanation() is None, timeout=5000)
    assert window.contour.explanation_shown() is None
    # picking another surface clears it too; so does picking another run to explain
    press(qtbot, window, Qt.Key.Key_E)
    qtbot.waitUntil(lambda: panel.explanation() is not None, timeout=5000)
    combo = window.surface_panel.combo
    combo.setCurrentIndex(combo.findData("ravine"))
    qtbot.waitUntil(lambda: panel.explanation() is None, timeout=5000)
    assert "surface changed" in panel.caption.text()
    assert window.contour.explanation_shown() is None
    press(qtbot, window, Qt.Key.Key_E)
    qtbot.waitUntil(lambda: panel.explanation() is not None, timeout=5000)
    panel.run_combo.setCurrentIndex(0)
    panel.run_combo.activated.emit(0)
    assert panel.explanation() is None and window.contour.explanation_shown() is None


def test_e_right_after_selecting_a_run_explains_that_run(make_window, qtbot, tmp_path):
    """The picker follows the selection at each redraw; a key pressed before that redraw
    still explains the run just selected, not the one selected before."""
    path = write_scenario(
        tmp_path,
        {"name": "bowl"},
        [
            run("Plain", "sgd", {"lr": 0.05}, (1.5, 1.2), "#ff0000"),
            run("Adam", "adam", {"lr": 0.05}, (-1.5, -1.0), "#3060ff"),
        ],
    )
    window = make_window(path)
    panel = window.explainer.panel
    window._select(window.doc.ids[0])
    wait_drawn(qtbot, window)
    window._select(window.doc.ids[1])  # and E at once, before any redraw
    window.explainer.act_explain.trigger()
    qtbot.waitUntil(lambda: panel.explanation() is not None, timeout=5000)
    assert panel.explanation().optimizer == "adam"
    assert panel.current_run() == window.doc.ids[1]


def test_the_selected_adaptive_ball_shows_its_accumulator_and_effective_lr(
    make_window, qtbot, tmp_path
):
    from gdsim.engine.explain import fmt_vec

    path = write_scenario(
        tmp_path,
        {"name": "ravine"},
        [
            run("Adam", "adam", {"lr": 0.1}, (-1.5, 1.0), "#ff0000"),
            run("GD", "sgd", {"lr": 0.02}, (1.5, 1.0), "#3060ff"),
        ],
    )
    window = make_window(path)
    contour = window.contour
    step(qtbot, window, 4)
    toggle(qtbot, window, window.explainer.act_boxes)
    qtbot.waitUntil(lambda: len(window.packet.internals) == 2, timeout=5000)
    before, ratio = shot(contour, "internals_label_off")
    window._select(window.doc.ids[0])
    wait_drawn(qtbot, window)
    it = window.packet.internals[0]
    text = contour.internals_label()
    assert text is not None
    assert f"v_hat = {fmt_vec(it.accumulator)}" in text
    assert f"effective lr = {fmt_vec(it.effective_lr)}" in text
    after, _ = shot(contour, "internals_label_on")
    # the numbers are drawn up and to the right of the Adam ball, in the boxes' colour
    new = near(after, BOX_COLOR, 40) & ~near(before, BOX_COLOR, 40)
    ax, ay = contour.data_to_widget(window.packet.frame.positions[:1])[0]
    ys, xs = np.nonzero(new)
    xs, ys = xs / ratio, ys / ratio
    assert ((xs > ax) & (ys < ay)).sum() > 30
    # SGD has no accumulator: selecting it hides the numbers; so does turning the boxes off
    window._select(window.doc.ids[1])
    wait_drawn(qtbot, window)
    assert contour.internals_label() is None
    window._select(window.doc.ids[0])
    wait_drawn(qtbot, window)
    assert contour.internals_label() is not None
    toggle(qtbot, window, window.explainer.act_boxes)
    assert contour.internals_label() is None
