"""The 3-D view, judged by its pixels (needs real OpenGL: Xvfb + xcb)."""

from __future__ import annotations

import numpy as np
import pytest
from view_pixels import any_within, centroid, near_color, rgb_array, save_shot

from gdsim.ui.views import colormaps
from tests.ui.conftest import show_widget

pytestmark = pytest.mark.gl

RED, BLUE, GREEN = "#ff0000", "#0000ff", "#00ff00"


def bowl(n: int = 120):
    x = np.linspace(-2.0, 2.0, n)
    y = np.linspace(-2.0, 2.0, n)
    gx, gy = np.meshgrid(x, y, indexing="ij")
    return x, y, gx**2 + gy**2


def bowl_f(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float).reshape(-1, 2)
    return p[:, 0] ** 2 + p[:, 1] ** 2


@pytest.fixture
def view(qtbot):
    from gdsim.ui.views.surface_3d import Surface3DView

    v = show_widget(qtbot, Surface3DView(), 640, 480)
    v.reset_camera()
    return v


def red_and_blue_balls(view, *, diverged_red: bool = False):
    x, y, z = bowl()
    view.set_surface(x, y, z, cmap="viridis")
    view.set_runs([RED, BLUE])
    pos = np.array([[1.0, 0.0], [-1.0, 0.0]])
    red_trail = np.array([[1.6, 0.5], [1.3, 0.2], [1.0, 0.0]])
    if diverged_red:
        red_trail = np.array([[0.5, -1.0], [1.5, 0.0], [1e200, 0.0], [np.inf, np.nan]])
    with np.errstate(over="ignore"):
        trails = [
            np.column_stack([t, bowl_f(t)])
            for t in (red_trail, np.array([[-1.6, -0.5], [-1.0, 0.0]]))
        ]
    view.update_runs(pos, bowl_f(pos), trails, [True, True], [diverged_red, False])


def test_balls_appear_where_their_positions_say(view, qtbot):
    red_and_blue_balls(view)
    image = view.render_image(640, 480)
    save_shot(image, "test_3d_red_blue_balls")
    arr = rgb_array(image)
    red = (arr[..., 0] > 150) & (arr[..., 1] < 80) & (arr[..., 2] < 80)
    blue = (arr[..., 2] > 150) & (arr[..., 0] < 80) & (arr[..., 1] < 80)
    assert red.sum() > 30 and blue.sum() > 30
    # The default camera looks along +y from the front: +x is on the right.
    rx, _ = centroid(red)
    bx, _ = centroid(blue)
    assert rx > 320 > bx
    # And exactly where the view's own projection puts the ball centres.
    r_scene = view.to_scene(1.0, 0.0, 1.0).reshape(1, 3)
    b_scene = view.to_scene(-1.0, 0.0, 1.0).reshape(1, 3)
    (prx, pry), (pbx, pby) = view.project(np.vstack([r_scene, b_scene]))
    assert any_within(red, prx, pry, 25)
    assert any_within(blue, pbx, pby, 25)


def _matches_colormap(arr: np.ndarray, name: str) -> float:
    """Fraction of non-background pixels that are a colour of the map, lit by some factor."""
    table = colormaps.get(name).getLookupTable(0.0, 1.0, 64, alpha=False, mode="float") * 255
    sample = arr[::3, ::3]
    px = sample[~near_color(sample, colormaps.BACKGROUND, tol=8)].astype(float)
    k = (px @ table.T) / (table**2).sum(axis=1)  # best brightness factor per (pixel, colour)
    resid = np.linalg.norm(px[:, None, :] - k[..., None] * table[None], axis=-1)
    ok = (resid < 12) & (k > 0.5) & (k < 1.05)
    return float(ok.any(axis=1).mean())


def test_surface_is_drawn_in_its_colormap(view, qtbot):
    x, y, z = bowl()
    view.set_surface(x, y, z, cmap="viridis")
    viridis_img = rgb_array(view.render_image(480, 360))
    view.set_surface(x, y, z, cmap="magma")
    magma_img = rgb_array(view.render_image(480, 360))
    save_shot(view.render_image(480, 360), "test_3d_bowl_magma")
    assert _matches_colormap(viridis_img, "viridis") > 0.6
    assert _matches_colormap(magma_img, "magma") > 0.6
    # The surface changed its colours, not only its name: yellow-green is viridis only.
    assert _matches_colormap(magma_img, "viridis") < 0.5 * _matches_colormap(viridis_img, "viridis")


def test_background_and_surface_both_present(view, qtbot):
    x, y, z = bowl()
    view.set_surface(x, y, z)
    arr = rgb_array(view.render_image(400, 300))
    bg = near_color(arr, colormaps.BACKGROUND, tol=6)
    assert bg[0, 0] and bg[-1, -1]
    assert 0.15 < (~bg).mean() < 0.9


def test_log_surface_and_wireframe_render_without_errors(view, qtbot):
    x = np.linspace(-2, 2, 150)
    y = np.linspace(-1, 3, 150)
    gx, gy = np.meshgrid(x, y, indexing="ij")
    z = (1 - gx) ** 2 + 100 * (gy - gx**2) ** 2
    view.set_surface(x, y, z, log=True, cmap="inferno", wireframe=True)
    view.set_minima(np.array([[1.0, 1.0]]), np.array([0.0]))
    view.set_local_minima(np.empty((0, 2)), np.empty(0))
    image = view.render_image(480, 360)
    save_shot(image, "test_3d_rosenbrock_log")
    arr = rgb_array(image)
    assert _matches_colormap(arr, "inferno") > 0.3
    # A log height is finite at the minimum, where log10(z) alone would be -inf.
    assert np.isfinite(view.to_scene(1.0, 1.0, 0.0)).all()


def test_diverged_run_has_no_ball_but_an_x_in_its_colour(view, qtbot):
    red_and_blue_balls(view, diverged_red=True)
    image = view.render_image(640, 480)
    save_shot(image, "test_3d_diverged")
    arr = rgb_array(image)
    red = (arr[..., 0] > 150) & (arr[..., 1] < 90) & (arr[..., 2] < 90)
    blue = (arr[..., 2] > 150) & (arr[..., 0] < 80) & (arr[..., 1] < 80)
    assert blue.sum() > 30
    # The X sits where the run was last on the stage, (1.5, 0), not at the ball's position.
    (px, py), (bx, by) = view.project(view.to_scene([1.5, 1.0], [0.0, 0.0], [2.25, 1.0]))
    assert any_within(red, px, py, 20)
    assert not any_within(red, bx, by, 6)


def test_trail_is_drawn_along_its_points(view, qtbot):
    x, y, z = bowl()
    view.set_surface(x, y, z)
    view.set_contours_visible(False)
    view.set_runs([GREEN])
    xs = np.linspace(-1.5, 1.5, 200)
    trail = np.column_stack([xs, np.full_like(xs, -1.0), xs**2 + 1.0])
    pos = trail[-1:, :2]
    view.update_runs(pos, bowl_f(pos), [trail], [True], [False])
    arr = rgb_array(view.render_image(640, 480))
    green = (arr[..., 1] > 200) & (arr[..., 0] < 60) & (arr[..., 2] < 60)
    for xv in (-1.0, 0.0, 1.0):
        (px, py) = view.project(view.to_scene(xv, -1.0, xv**2 + 1.0))[0]
        assert any_within(green, px, py, 8), f"no trail near x={xv}"
    # Hidden runs are not drawn.
    view.update_runs(pos, bowl_f(pos), [trail], [False], [False])
    arr = rgb_array(view.render_image(640, 480))
    assert ((arr[..., 1] > 200) & (arr[..., 0] < 60) & (arr[..., 2] < 60)).sum() == 0


def test_overlays_toggle(view, qtbot):
    x, y, z = bowl()
    view.set_surface(x, y, z)
    view.set_runs([RED])
    pos = np.array([[1.0, 1.0]])
    grad = 2 * pos
    view.update_runs(
        pos, bowl_f(pos), [np.column_stack([pos, bowl_f(pos)])], [True], [False], gradients=grad
    )
    white = lambda a: (a > 200).all(axis=-1)  # noqa: E731
    before = white(rgb_array(view.render_image(480, 360))).sum()
    view.set_overlay_visible("gradient", True)
    image = view.render_image(480, 360)
    save_shot(image, "test_3d_gradient_arrow")
    after = white(rgb_array(image)).sum()
    assert view.overlay_visible("gradient")
    assert after > before + 20
    with pytest.raises(ValueError, match="gradient"):
        view.set_overlay_visible("curvature", True)


def test_camera_presets_orient_the_axes(view, qtbot):
    x, y, z = bowl()
    view.set_surface(x, y, z)
    pts = view.to_scene([-1, 1, 0, 0], [0, 0, -1, 1], [0, 0, 0, 0])
    view.set_camera_preset("top")
    (xl, _), (xr, _), (_, yb), (_, yt) = view.project(pts)
    assert xr > xl and yt < yb  # x to the right, y up
    view.set_camera_preset("side-x")
    (xl, _), (xr, _), _, _ = view.project(pts)
    assert xr > xl
    view.set_camera_preset("side-y")
    _, _, (yl, _), (yr, _) = view.project(pts)
    assert yr > yl
    low, high = view.project(view.to_scene([0, 0], [0, 0], [0, 8]))
    assert high[1] < low[1]  # z up
    view.reset_camera()
    assert view.camera()["elevation"] == pytest.approx(40)
    with pytest.raises(ValueError, match="default"):
        view.set_camera_preset("isometric")


@pytest.mark.parametrize("size", [(1280, 960), (3840, 2160)])
def test_render_image_at_export_sizes(view, qtbot, size):
    red_and_blue_balls(view)
    image = view.render_image(*size)
    assert (image.width(), image.height()) == size
    arr = rgb_array(image)
    red = (arr[..., 0] > 150) & (arr[..., 1] < 80) & (arr[..., 2] < 80)
    blue = (arr[..., 2] > 150) & (arr[..., 0] < 80) & (arr[..., 1] < 80)
    assert centroid(red)[0] > size[0] / 2 > centroid(blue)[0]
    if size[0] == 3840:
        save_shot(image, "test_3d_export_4k")


def test_bad_input_is_refused_with_a_reason(view):
    x, y, z = bowl(20)
    with pytest.raises(ValueError, match="shape"):
        view.set_surface(x, y, z[:, :-1])
    with pytest.raises(ValueError, match="colour map"):
        view.set_surface(x, y, z, cmap="jet")
    view.set_surface(x, y, z)
    view.set_runs([RED])
    with pytest.raises(ValueError, match="1 runs"):
        view.update_runs(
            np.zeros((2, 2)), np.zeros(2), [np.zeros((1, 3))] * 2, [True] * 2, [False] * 2
        )
    with pytest.raises(ValueError, match="colour"):
        view.set_runs(["not-a-colour"])


def test_render_before_show_says_why(qtbot):
    from gdsim.ui.views.surface_3d import Surface3DView

    v = Surface3DView()
    qtbot.addWidget(v)
    with pytest.raises(RuntimeError, match="show"):
        v.render_image(100, 100)


def test_a_new_surface_replaces_the_old_and_runs_follow_it(view, qtbot):
    red_and_blue_balls(view)
    x = np.linspace(-4.0, 4.0, 90)
    y = np.linspace(-1.0, 1.0, 40)
    gx, gy = np.meshgrid(x, y, indexing="ij")
    view.set_surface(x, y, 0.1 * gx**2 + 0.1 * gy**2, cmap="cividis")
    image = view.render_image(640, 480)
    save_shot(image, "test_3d_wide_box")
    arr = rgb_array(image)
    red = (arr[..., 0] > 150) & (arr[..., 1] < 80) & (arr[..., 2] < 80)
    # x and y keep one scale: the wide box spans [-1, 1] in x and [-0.25, 0.25] in y.
    assert view.to_scene(4.0, 1.0, 0.0)[:2] == pytest.approx([1.0, 0.25])
    (px, py), _ = view.project(view.to_scene([1.0, -1.0], [0.0, 0.0], [0.1, 0.1]))
    assert any_within(red, px, py, 25)


def test_fitted_camera_follows_resizes_until_the_person_takes_it(view, qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    x, y, z = bowl()
    view.set_surface(x, y, z)
    d0 = view.camera()["distance"]
    view.resize(900, 300)  # a wide, short dock: the height decides, so back off
    qtbot.waitUntil(lambda: view.camera()["distance"] > 1.2 * d0)
    gl = view.gl_widget
    wheel = QWheelEvent(
        QPointF(50, 50),
        QPointF(gl.mapToGlobal(QPoint(50, 50))),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(gl, wheel)
    zoomed = view.camera()["distance"]
    view.resize(640, 480)
    QApplication.processEvents()
    assert view.camera()["distance"] == pytest.approx(zoomed)
    view.reset_camera()
    assert view.camera()["distance"] == pytest.approx(d0, rel=0.02)


def test_screen_frames_drawn_over_the_cached_scenery_match_plain_drawing(view, qtbot):
    """The still scenery (surface, contours, floor) is cached between frames; the picture on
    screen must be the one drawn from scratch, after a ball moves and after the surface
    changes."""
    gl_widget = view.gl_widget

    def screen(cache: bool) -> np.ndarray:
        gl_widget._cache_ok = cache
        gl_widget.update()
        return rgb_array(gl_widget.grabFramebuffer()).astype(int)

    def same(a: np.ndarray, b: np.ndarray) -> bool:
        return (np.abs(a - b).max(axis=-1) > 8).mean() < 0.002

    red_and_blue_balls(view)
    first = screen(True)
    assert same(first, screen(False))
    pos = np.array([[0.5, 0.5], [-0.5, 0.2]])
    trails = [np.column_stack([pos[i : i + 1], bowl_f(pos[i : i + 1])]) for i in range(2)]
    view.update_runs(pos, bowl_f(pos), trails, [True, True], [False, False])
    moved = screen(True)
    assert not same(first, moved)  # the balls moved on screen, not only in the cache
    assert same(moved, screen(False))
    x, y, z = bowl()
    view.set_surface(x, y, z, cmap="magma")
    recoloured = screen(True)
    assert not same(moved, recoloured)
    assert same(recoloured, screen(False))
    view.set_contours_visible(False)
    assert same(screen(True), screen(False))


def test_the_scenery_cache_survives_a_move_to_another_window(view, qtbot):
    """A dock floated out of the main window puts the GL view in another window (Qt may give
    it a new context, and framebuffers are not shared between contexts): the view must still
    draw the whole scene from its cache."""
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    red_and_blue_balls(view)
    gl_widget = view.gl_widget
    gl_widget.grabFramebuffer()  # the cache is made in the first context
    other = QWidget()
    qtbot.addWidget(other)
    QVBoxLayout(other).addWidget(view)
    other.resize(640, 480)
    other.show()
    qtbot.waitExposed(other)
    cached = rgb_array(gl_widget.grabFramebuffer()).astype(int)
    gl_widget._cache_ok = False
    plain = rgb_array(gl_widget.grabFramebuffer()).astype(int)
    assert cached.shape == plain.shape
    assert (np.abs(cached - plain).max(axis=-1) > 8).mean() < 0.002
    assert (plain != plain[0, 0]).any(axis=-1).mean() > 0.1  # a scene, not a blank frame
    view.setParent(None)  # back to the fixture, which closes it
