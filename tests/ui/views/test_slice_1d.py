"""The slice view: the cut, its tangent and the ball drawn where the numbers say; the slope
printed is ∇f · u; no bogus direction when there is none."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication
from view_pixels import near_color, rgb_array, save_shot

from gdsim.ui.views.slice_1d import BATCH_COLOR, CURVE_COLOR, TANGENT_COLOR, SliceView, t_range
from tests.ui.conftest import show_widget

BALL = "#ff2020"
BOX = ((-2.0, 2.0), (-2.0, 2.0))


def f(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    return p[..., 0] ** 2 + 3 * p[..., 1] ** 2


def grad(p) -> np.ndarray:
    return np.array([2 * p[0], 6 * p[1]])


@pytest.fixture
def view(qtbot):
    v = show_widget(qtbot, SliceView(), 700, 520)
    v.set_function(f, BOX)
    return v


def shot(view: SliceView) -> np.ndarray:
    """The plot's pixels, after the range has settled (pyqtgraph fits it at paint time)."""
    QApplication.processEvents()
    view.plot.grab()
    QApplication.processEvents()
    return rgb_array(view.plot.grab().toImage())


def seen_near(view: SliceView, arr: np.ndarray, point, color: str, radius: int = 4) -> bool:
    (px, py) = view.data_to_widget(np.asarray([point], dtype=float))[0]
    x, y = round(px), round(py)
    patch = arr[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1]
    return bool(near_color(patch, color, tol=60).any())


def test_curve_tangent_and_ball_are_drawn_where_the_numbers_say(view):
    p = np.array([1.0, 0.5])
    view.update_ball(p, grad(p), np.zeros(2), color=BALL)
    arr = shot(view)
    save_shot(view.grab().toImage(), "test_slice_x")
    st = view.state
    assert st is not None and st.direction == "x"
    assert st.slope == pytest.approx(2.0) and st.f0 == pytest.approx(f(p))
    # Along x the cut spans the box: x from -2 to 2, drawn against x itself.
    assert st.t[0] + st.offset == pytest.approx(-2.0) and st.t[-1] + st.offset == pytest.approx(2.0)
    assert seen_near(view, arr, (1.0, f(p)), BALL)
    for x in (-1.5, -0.5, 1.8):  # the curve f(x, 0.5)
        assert seen_near(view, arr, (x, x**2 + 0.75), CURVE_COLOR)
    for x in (0.6, 1.8):  # the tangent f0 + 2 (x - 1), away from the curve
        assert seen_near(view, arr, (x, f(p) + 2 * (x - 1.0)), TANGENT_COLOR)
        assert not seen_near(view, arr, (x, f(p) + 2 * (x - 1.0)), CURVE_COLOR, radius=1)
    assert "a = ∇f·u = <b>2</b>" in view.readout.text()


def test_changing_the_direction_moves_the_tangent_and_the_printed_slope(view, qtbot):
    p = np.array([1.0, 0.5])
    view.update_ball(p, grad(p), np.zeros(2), color=BALL)
    arr = shot(view)
    assert seen_near(view, arr, (0.6, f(p) - 0.8), TANGENT_COLOR)
    # Choose "y" as a person does: the cut is now f(1, y), the slope 6 · 0.5 = 3.
    view.direction_combo.setFocus()
    view.direction_combo.setCurrentIndex(view.direction_combo.findData("y"))
    arr = shot(view)
    save_shot(view.grab().toImage(), "test_slice_y")
    assert view.state.direction == "y" and view.state.slope == pytest.approx(3.0)
    assert "a = ∇f·u = <b>3</b>" in view.readout.text()
    assert not seen_near(view, arr, (0.6, f(p) - 0.8), TANGENT_COLOR)  # the old one is gone
    for y in (1.2, 1.8):  # the new tangent f0 + 3 (y - 0.5)
        assert seen_near(view, arr, (y, f(p) + 3 * (y - 0.5)), TANGENT_COLOR)
    assert seen_near(view, arr, (0.5, f(p)), BALL)
    for y in (-1.5, 1.5):
        assert seen_near(view, arr, (y, 1 + 3 * y**2), CURVE_COLOR)


@pytest.mark.parametrize(
    ("direction", "velocity"),
    [("gradient", (0.0, 0.0)), ("velocity", (-0.3, 0.4)), ("x", (0, 0)), ("y", (0, 0))],
)
def test_the_printed_slope_is_the_directional_derivative(view, direction, velocity):
    p = np.array([-0.7, 0.4])
    g = grad(p)
    view.set_direction(direction)
    view.update_ball(p, g, np.array(velocity), color=BALL)
    st = view.state
    u = {
        "gradient": g / np.hypot(*g),
        "velocity": np.array(velocity) / np.hypot(*velocity) if any(velocity) else None,
        "x": np.array([1.0, 0.0]),
        "y": np.array([0.0, 1.0]),
    }[direction]
    assert st.u == pytest.approx(u)
    assert st.slope == pytest.approx(float(g @ u))
    if direction == "gradient":
        assert st.slope == pytest.approx(np.hypot(*g))  # the steepest slope
    # The printed value is that number (to the 6 digits shown).
    assert f"<b>{st.slope:.6g}</b>" in view.readout.text()
    # ... and the cut's own numerical derivative at the ball agrees with it.
    k = int(np.argmin(np.abs(st.t)))
    numeric = (st.values[k + 1] - st.values[k - 1]) / (st.t[k + 1] - st.t[k - 1])
    assert numeric == pytest.approx(st.slope, abs=0.05 * (1 + abs(st.slope)))


def test_the_linear_prediction_and_its_error(view, qtbot):
    p = np.array([1.0, 0.0])
    view.update_ball(p, grad(p), np.zeros(2), color=BALL)
    for e in (0.05, 0.8):
        qtbot.keyClicks(view.epsilon_spin, "")  # focus as a person would
        view.epsilon_spin.selectAll()
        qtbot.keyClicks(view.epsilon_spin, f"{e}")
        st = view.state
        assert st.epsilon == pytest.approx(e)
        # f(1 + e, 0) = 1 + 2e + e²: the tangent misses exactly e².
        assert st.predicted == pytest.approx(1 + 2 * e)
        assert st.true == pytest.approx((1 + e) ** 2)
        assert st.error == pytest.approx(e**2)
    text = view.readout.text()
    assert "off by 29%" in text  # e² / (2e + e²) at e = 0.8
    arr = shot(view)
    save_shot(view.grab().toImage(), "test_slice_prediction")
    assert seen_near(view, arr, (1.8, 1 + 2 * 0.8), TANGENT_COLOR)  # the prediction
    assert seen_near(view, arr, (1.8, 1.8**2), CURVE_COLOR)  # the true value
    view.set_epsilon(0.01)
    assert "tangent is good here" in view.readout.text()


def test_no_bogus_direction_when_velocity_or_gradient_vanish(view):
    p = np.array([1.0, 0.5])
    view.update_ball(p, grad(p), np.zeros(2), color=BALL)
    assert near_color(shot(view), CURVE_COLOR, 60).sum() > 50
    view.set_direction("velocity")
    assert view.state is None
    assert "not moving" in view.readout.text()
    arr = shot(view)
    save_shot(view.grab().toImage(), "test_slice_no_velocity")
    assert near_color(arr, CURVE_COLOR, 30).sum() == 0
    assert near_color(arr, TANGENT_COLOR, 30).sum() == 0
    assert near_color(arr, BALL, 30).sum() == 0
    assert view.message.isVisible() and "not moving" in view.message.toPlainText()
    view.set_direction("gradient")
    view.update_ball(np.zeros(2), np.zeros(2), np.zeros(2), color=BALL)
    assert view.state is None and "gradient vanishes" in view.readout.text()
    # A ball settled in a minimum: |∇f| of rounding size points nowhere in particular.
    view.update_ball(np.array([1e-17, 0.0]), np.array([2e-17, 0.0]), np.zeros(2), color=BALL)
    assert view.state is None and "|∇f| = 2e-17" in view.readout.text()
    view.set_direction("velocity")
    view.update_ball(p, grad(p), np.array([1e-13, 0.0]), color=BALL)
    assert view.state is None and "not moving" in view.readout.text()
    view.set_direction("gradient")
    view.update_ball(np.array([np.nan, 0.0]), np.zeros(2), np.zeros(2), color=BALL)
    assert "diverged" in view.readout.text()
    # Once there is a direction again, everything comes back.
    view.update_ball(p, grad(p), np.array([0.1, 0.0]), color=BALL)
    assert view.state is not None and near_color(shot(view), CURVE_COLOR, 60).sum() > 50


def test_a_mini_batch_loss_is_drawn_dashed_beside_the_full_one(view):
    p = np.array([0.5, 0.0])

    def batch(points):
        return f(points) + 1.5  # a shifted stand-in for a mini-batch's loss

    on_batch = [(x, x * x + 1.5) for x in (-1.5, -1.0, 1.2)]
    view.update_ball(p, grad(p), np.zeros(2), color=BALL)
    arr = shot(view)
    assert not any(seen_near(view, arr, q, BATCH_COLOR, radius=2) for q in on_batch)
    view.update_ball(p, grad(p), np.zeros(2), color=BALL, batch_value=batch)
    arr = shot(view)
    save_shot(view.grab().toImage(), "test_slice_batch")
    assert seen_near(view, arr, (-1.2, 1.44 + 1.5), BATCH_COLOR)
    assert view._legend.getLabel(view.batch_curve) is not None
    # Dashed: along the curve some columns have it and some do not.
    xs = np.linspace(-1.6, -0.8, 40)
    hits = [seen_near(view, arr, (x, x * x + 1.5), BATCH_COLOR, radius=0) for x in xs]
    assert 0 < sum(hits) < len(hits)
    view.update_ball(p, grad(p), np.zeros(2), color=BALL)
    arr = shot(view)
    assert not any(seen_near(view, arr, q, BATCH_COLOR, radius=2) for q in on_batch)
    assert view._legend.getLabel(view.batch_curve) is None


def test_a_one_d_function_fixes_the_direction_to_x(view):
    view.set_direction("gradient")
    view.set_function(lambda pts: np.asarray(pts)[..., 0] ** 2, ((-2, 2), (-1, 1)), one_d=True)
    assert view.direction() == "x" and not view.direction_combo.isEnabled()
    assert "x only" in view.direction_combo.toolTip()
    view.set_function(f, BOX)
    assert view.direction_combo.isEnabled()


def test_t_range_is_the_box_along_u():
    assert t_range(np.array([0.5, 0.0]), np.array([1.0, 0.0]), BOX) == (-2.5, 1.5)
    u = np.array([1.0, 1.0]) / math.sqrt(2)
    lo, hi = t_range(np.zeros(2), u, BOX)
    assert (lo, hi) == pytest.approx((-2 * math.sqrt(2), 2 * math.sqrt(2)))
    # Outside the box: the box's diagonal centred on the ball.
    lo, hi = t_range(np.array([5.0, 5.0]), np.array([1.0, 0.0]), BOX)
    assert (lo, hi) == pytest.approx((-math.sqrt(32) / 2, math.sqrt(32) / 2))
