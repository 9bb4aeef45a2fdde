"""The 2-D view: pixels where the data says, and the gestures a person makes on it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from view_pixels import any_within, near_color, rgb_array, save_shot

from gdsim.ui.views import colormaps
from gdsim.ui.views.contour_2d import Contour2DView
from tests.ui.conftest import show_widget

RED, BLUE = "#ff0000", "#0000ff"


def bowl(n: int = 150):
    x = np.linspace(-2.0, 2.0, n)
    y = np.linspace(-2.0, 2.0, n)
    gx, gy = np.meshgrid(x, y, indexing="ij")
    return x, y, gx**2 + 0.5 * gy**2


@pytest.fixture
def view(qtbot):
    v = show_widget(qtbot, Contour2DView(), 600, 600)
    x, y, z = bowl()
    v.set_surface(x, y, z)
    QApplication.processEvents()
    return v


def widget_pos(view, x: float, y: float) -> QPoint:
    px, py = view.data_to_widget(np.array([[x, y]]))[0]
    return QPoint(round(px), round(py))


def test_surface_colours_follow_the_colormap(view):
    view.set_contours_visible(False)
    QApplication.processEvents()
    arr = rgb_array(view.grab().toImage())
    # Lowest value at (0, 0): the map's first colour; a corner is near the map's top.
    lut = colormaps.lookup_table("viridis")
    cx, cy = view.data_to_widget(np.array([[0.0, 0.0]]))[0]
    lo = lut[0, :3].astype(int)
    assert np.abs(arr[round(cy) + 3, round(cx) + 3].astype(int) - lo).max() < 20
    kx, ky = view.data_to_widget(np.array([[1.98, 1.98]]))[0]
    hi = lut[-1, :3].astype(int)
    assert np.abs(arr[round(ky), round(kx)].astype(int) - hi).max() < 25


def test_contour_lines_are_drawn_and_toggle(view):
    # Along y = 0 the image is a smooth ramp except where level lines cross it.
    def dark_dips():
        arr = rgb_array(view.grab().toImage()).astype(int)
        xs = view.data_to_widget(np.column_stack([np.linspace(0.2, 1.8, 200), np.zeros(200)]))
        row = np.array([arr[round(py), round(px)].sum() for px, py in xs])
        smooth = np.convolve(row, np.ones(9) / 9, mode="same")
        return int(((smooth - row)[5:-5] > 25).sum())

    assert dark_dips() > 5
    view.set_contours_visible(False)
    assert dark_dips() == 0
    assert not view.contours_visible()


def test_trail_and_ball_are_drawn_where_the_data_says(view):
    view.set_runs([RED])
    t = np.linspace(0, 1, 100)
    trail = np.column_stack([-1.5 + 2.5 * t, -1.0 + 2.0 * t])
    view.update_runs(trail[-1:], [trail], [True], [False])
    QApplication.processEvents()
    image = view.grab().toImage()
    save_shot(image, "test_2d_trail")
    red = near_color(rgb_array(image), RED, tol=60)
    for k in (10, 50, 90):
        px, py = view.data_to_widget(trail[k : k + 1])[0]
        assert any_within(red, px, py, 3), f"no trail at point {k}"
    # Nothing red far from the trail's line.
    px, py = view.data_to_widget(np.array([[1.5, -1.5]]))[0]
    assert not any_within(red, px, py, 30)


def test_minima_markers_are_drawn(view):
    before = rgb_array(view.grab().toImage())
    view.set_minima(np.array([[1.0, 1.0]]), np.array([0.0]))
    view.set_local_minima(np.array([[-1.0, -1.0]]), np.array([1.0]))
    QApplication.processEvents()
    image = view.grab().toImage()
    save_shot(image, "test_2d_minima")
    after = rgb_array(image)
    white = (after > 200).all(axis=-1) & ~(before > 200).all(axis=-1)
    grey = (np.abs(after.astype(int) - 208) < 20).all(axis=-1)
    (sx, sy), (tx, ty) = view.data_to_widget(np.array([[1.0, 1.0], [-1.0, -1.0]]))
    assert any_within(white, sx, sy, 10)
    assert any_within(grey, tx, ty, 10)


def test_diverged_run_ends_in_an_x_and_has_no_ball(view):
    view.set_runs([RED, BLUE])
    diverging = np.array([[0.5, 0.5], [-1.0, -1.0], [3.0, 3.0], [1e300, 1e300], [np.inf, np.nan]])
    fine = np.array([[-1.0, 1.0], [-0.5, 0.5]])
    positions = np.array([[np.inf, np.nan], [-0.5, 0.5]])
    view.update_runs(positions, [diverging, fine], [True, True], [True, False])
    QApplication.processEvents()
    image = view.grab().toImage()
    save_shot(image, "test_2d_diverged")
    red = near_color(rgb_array(image), RED, tol=60)
    # The X marks (-1, -1): its last point near the box (3, 3 is outside the box).
    px, py = view.data_to_widget(np.array([[-1.0, -1.0]]))[0]
    assert any_within(red, px, py, 6)


def test_hidden_runs_are_not_drawn(view):
    view.set_runs([RED])
    trail = np.array([[-1.0, -1.0], [1.0, 1.0]])
    view.update_runs(trail[-1:], [trail], [False], [False])
    QApplication.processEvents()
    assert near_color(rgb_array(view.grab().toImage()), RED, tol=60).sum() == 0


def test_shift_click_requests_a_ball_there(view, qtbot):
    with qtbot.waitSignal(view.addBallRequested, timeout=1000) as sig:
        qtbot.mouseClick(
            view.viewport(),
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.ShiftModifier,
            widget_pos(view, 0.5, -1.0),
        )
    x, y = sig.args
    assert x == pytest.approx(0.5, abs=0.03) and y == pytest.approx(-1.0, abs=0.03)


def test_click_moves_the_selected_runs_start(view, qtbot):
    view.set_runs([RED, BLUE])
    view.set_starts(np.array([[-1.0, -1.0], [1.0, 1.0]]))
    view.set_selected(1)
    with qtbot.waitSignal(view.startMoved, timeout=1000) as sig:
        qtbot.mouseClick(
            view.viewport(), Qt.MouseButton.LeftButton, pos=widget_pos(view, -0.5, 1.2)
        )
    i, x, y = sig.args
    assert i == 1 and x == pytest.approx(-0.5, abs=0.03) and y == pytest.approx(1.2, abs=0.03)


def test_click_without_selection_does_nothing(view, qtbot):
    view.set_runs([RED])
    view.set_selected(None)
    with qtbot.assertNotEmitted(view.startMoved, wait=100):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=widget_pos(view, 0.0, 0.0))


def _send(widget, kind, pos: QPoint, buttons) -> None:
    ev = QMouseEvent(
        kind,
        QPointF(pos),
        QPointF(widget.mapToGlobal(pos)),
        Qt.MouseButton.LeftButton,
        buttons,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, ev)


def test_dragging_a_start_marker_reports_the_drop(view, qtbot):
    view.set_runs([RED, BLUE])
    view.set_starts(np.array([[-1.0, -1.0], [1.0, 1.0]]))
    QApplication.processEvents()
    vp = view.viewport()
    start, end = widget_pos(view, -1.0, -1.0), widget_pos(view, 0.5, -0.25)
    dragged = []
    view.startDragged.connect(lambda i, x, y: dragged.append((i, x, y)))
    left = Qt.MouseButton.LeftButton
    with qtbot.waitSignal(view.startMoved, timeout=1000) as sig:
        _send(vp, QMouseEvent.Type.MouseButtonPress, start, left)
        for t in np.linspace(0.1, 1.0, 8):
            p = QPoint(
                round(start.x() + t * (end.x() - start.x())),
                round(start.y() + t * (end.y() - start.y())),
            )
            _send(vp, QMouseEvent.Type.MouseMove, p, left)
        _send(vp, QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)
    i, x, y = sig.args
    assert i == 0
    assert x == pytest.approx(0.5, abs=0.05) and y == pytest.approx(-0.25, abs=0.05)
    assert dragged and all(d[0] == 0 for d in dragged)


def test_hover_reports_data_coordinates(view, qtbot):
    with qtbot.waitSignal(view.pointHovered, timeout=1000) as sig:
        qtbot.mouseMove(view.viewport(), widget_pos(view, 0.75, 0.25))
    x, y = sig.args
    assert x == pytest.approx(0.75, abs=0.03) and y == pytest.approx(0.25, abs=0.03)


def test_arrows_draw_in_overlay_colours(view):
    view.set_runs([RED])
    pos = np.array([[1.0, 0.0]])
    view.update_runs(pos, [pos], [True], [False], velocities=np.array([[0.0, 1.0]]))
    QApplication.processEvents()
    orange = colormaps.OVERLAY_COLORS["velocity"]
    assert near_color(rgb_array(view.grab().toImage()), orange, tol=30).sum() == 0
    view.set_overlay_visible("velocity", True)
    QApplication.processEvents()
    mask = near_color(rgb_array(view.grab().toImage()), orange, tol=30)
    px, py = view.data_to_widget(np.array([[1.0, 0.3]]))[0]
    assert any_within(mask, px, py, 4)  # the arrow goes up from the ball


def test_log_levels_and_bad_grids(view):
    x, y, z = bowl()
    view.set_surface(x, y, z, log=True, levels=12, cmap="plasma")
    QApplication.processEvents()
    save_shot(view.grab().toImage(), "test_2d_log_plasma")
    with pytest.raises(ValueError, match="evenly spaced"):
        view.set_surface(np.r_[0.0, 1.0, 3.0], np.r_[0.0, 1.0, 2.0], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        view.set_surface(x, y, z.T[:-1])


def test_a_trail_grown_frame_by_frame_looks_like_the_whole_trail_drawn_at_once(qtbot):
    """Trails are thinned and drawn as a cached older part plus a recent part while they grow:
    the picture must match drawing the finished trail in one go (including a zigzag run,
    whose points all land in different pixels)."""
    rng = np.random.default_rng(3)
    k = np.arange(6000)
    zigzag = np.column_stack([1.8 * np.exp(-k / 3000), 0.6 * (-1.0) ** k * np.exp(-k / 4000)])
    walk = np.clip(np.cumsum(rng.normal(0, 0.01, (6000, 2)), axis=0), -1.9, 1.9)
    trails = [zigzag, walk]

    def make():
        v = Contour2DView()
        qtbot.addWidget(v)
        v.resize(500, 500)
        v.show()
        qtbot.waitExposed(v)
        v.set_surface(*bowl())
        v.set_runs([RED, BLUE])
        v.set_contours_visible(False)
        return v

    def show(v, n):
        pos = np.array([t[n - 1] for t in trails])
        v.update_runs(pos, [t[:n] for t in trails], [True, True], [False, False])
        QApplication.processEvents()

    grown, whole = make(), make()
    for n in range(2, 6001, 150):
        show(grown, n)
    show(grown, 6000)
    show(whole, 6000)
    a = rgb_array(grown.grab().toImage()).astype(int)
    b = rgb_array(whole.grab().toImage()).astype(int)
    assert (np.abs(a - b).max(axis=-1) > 40).mean() < 0.002
    assert near_color(a.astype(np.uint8), RED).sum() > 200


def test_plain_gd_step_and_the_step_taken_share_one_scale(view):
    """With the −lr·∇f overlay on, both arrows are drawn at one linear scale: a step half as
    long as the GD step is drawn half as long (their tips land where the data says)."""
    from gdsim.ui.views.contour_2d import MAP_OVERLAY_COLORS

    view.set_runs([RED])
    pos = np.array([[-1.0, -1.0]])
    steps, gd = np.array([[0.02, 0.0]]), np.array([[0.0, 0.04]])
    view.set_overlay_visible("step", True)
    view.set_overlay_visible("gd_step", True)
    view.update_runs(pos, [pos], [True], [False], steps=steps, gd_steps=gd)
    QApplication.processEvents()
    k = view._shared_scale
    assert k == pytest.approx(0.12 * 4.0 / 0.04)  # tiny steps magnified together
    arr = rgb_array(view.grab().toImage())
    magenta = near_color(arr, colormaps.OVERLAY_COLORS["step"], tol=40)
    cyan = near_color(arr, MAP_OVERLAY_COLORS["gd_step"], tol=40)
    (sx, sy), (gx, gy), (mx, my) = view.data_to_widget(
        np.array([pos[0] + steps[0] * k, pos[0] + gd[0] * k, pos[0] + gd[0] * k * 0.5])
    )
    assert any_within(magenta, sx, sy, 4) and any_within(cyan, gx, gy, 4)
    assert any_within(cyan, mx, my, 3) and not any_within(magenta, mx, my, 6)
    assert f"×{k:.3g}" in view._legend.text() and "plain GD step" in view._legend.text()


def test_explanation_stages_are_drawn_and_cleared(view):
    from gdsim.engine.explain import Arrow, Point, Stage
    from gdsim.ui.views.contour_2d import EXPLAIN_COLORS

    theta = np.array([1.0, 1.0])
    stages = (
        Stage("Gradient", "g", (Arrow("gradient", theta, np.array([2.0, 0.0]), "g", "gradient"),)),
        Stage(
            "New position",
            "θ + step",
            (Arrow("step", theta, np.array([-0.8, -0.4]), "step", "position"),),
            (Point("new_position", theta + np.array([-0.8, -0.4]), "θ + step"),),
        ),
    )
    view.show_explanation(stages, 1)
    QApplication.processEvents()
    arr = rgb_array(view.grab().toImage())
    magenta = near_color(arr, EXPLAIN_COLORS["step"], tol=40)
    (mx, my), (lx, ly) = view.data_to_widget(theta + np.array([[-0.4, -0.2], [-0.8, -0.4]]))
    assert any_within(magenta, mx, my, 3)  # the shaft, at its true length (the landing stage)
    assert any_within(magenta, lx, ly, 9)  # the landing ring
    assert view.explanation_shown() == (1, 1.0)
    with pytest.raises(ValueError, match="stage 2"):
        view.show_explanation(stages, 2)
    view.clear_explanation()
    QApplication.processEvents()
    arr = rgb_array(view.grab().toImage())
    assert not any_within(near_color(arr, EXPLAIN_COLORS["step"], tol=40), mx, my, 3)
    assert view.explanation_shown() is None
