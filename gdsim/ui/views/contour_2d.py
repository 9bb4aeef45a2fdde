"""The 2-D view: the loss surface from above, as a colour image with level lines.

This is where a person places balls: drag a start marker, click to move the selected run's
start, Shift+click to ask for a new ball. The view only reports those gestures as signals;
what they mean for the experiment is the main window's business.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem, QLabel, QWidget

from gdsim.ui.views import colormaps
from gdsim.ui.views.geometry import (
    HeightScale,
    TrailThinner,
    arrow_segments,
    clean_grid,
    contour_segments,
    decimate_indices,
    scale_arrows,
)

OVERLAY_KINDS = colormaps.OVERLAY_KINDS
OVERLAY_COLORS = colormaps.OVERLAY_COLORS
MAX_TRAIL_POINTS = 5000
#: Overlays only the map has: the plain gradient-descent step −lr·∇f beside the step taken.
MAP_OVERLAY_KINDS: tuple[str, ...] = ("gd_step",)
MAP_OVERLAY_COLORS: dict[str, str] = {"gd_step": "#4fc3ff"}
#: Per-axis effective step boxes of adaptive optimizers, and the downhill field.
BOX_COLOR = "#00e5a0"
FIELD_COLOR = "#d8d8d8"
#: Colours of the explainer's arrows by kind (see gdsim.engine.explain.Arrow).
EXPLAIN_COLORS: dict[str, str] = {
    "gradient": "#ffffff",
    "decay": "#9cff57",
    "velocity": "#ffb000",
    "step": "#ff4fd8",
    "gd_step": "#4fc3ff",
}
#: A displacement shorter than this fraction of the box is magnified for drawing (and says so).
_TINY_STEP = 0.03


def _color(color: str, alpha: int = 255) -> QColor:
    c = QColor(color)
    if not c.isValid():
        raise ValueError(f"Not a colour: {color!r} (expected '#rrggbb')")
    c.setAlpha(alpha)
    return c


class _ClickViewBox(pg.ViewBox):
    """A ViewBox that reports left clicks on empty ground (items above it take theirs first)."""

    def __init__(self, on_left_click, **kwargs) -> None:
        super().__init__(**kwargs)
        self._on_left_click = on_left_click

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self._on_left_click(p.x(), p.y(), ev.modifiers())
            return
        super().mouseClickEvent(ev)


class _StartMarker(pg.TargetItem):
    """A run's draggable start. Accepts its own left clicks so they do not move another run."""

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            return
        super().mouseClickEvent(ev)


def _antialiased_path(item: pg.PlotCurveItem) -> None:
    """Say up front that this antialiased curve is drawn as one path: pyqtgraph otherwise
    asks the pen four questions on every paint to decide (segmentedLineMode "auto" draws
    antialiased curves as one path too)."""
    item.setSegmentedLineMode("off")


class _SplitTrail:
    """A trail drawn as two curves: an older part kept as a cached picture, and the recent part.

    An antialiased 2-px trail of a few thousand points costs milliseconds to stroke, and a
    playing run adds points every frame. The older part is drawn once into a cached pixmap
    (Qt redraws it only when it changes or the view moves); only the recent part is stroked
    every frame, and it is folded into the older part once it has grown past an eighth of it.
    """

    def __init__(self, pen) -> None:
        self.old = pg.PlotCurveItem(pen=pen, connect="finite", antialias=True)
        self.old.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.new = pg.PlotCurveItem(pen=pen, connect="finite", antialias=True)
        self.items = (self.old, self.new)
        for item in self.items:
            item.setZValue(10)
            item.hide()
            _antialiased_path(item)
        self._frozen = np.empty((0, 2))
        self._pen = pen

    def hide(self) -> None:
        for item in self.items:
            item.hide()

    def set(self, shown: np.ndarray, pen) -> None:
        """Draw the points (m, 2) (NaN rows are gaps) with this pen."""
        if len(shown) < 2:
            self.hide()
            return
        if pen != self._pen:
            self._pen = pen
            for item in self.items:
                item.setPen(pen)
        k = len(self._frozen)
        valid = 2 <= k < len(shown) and np.array_equal(shown[:k], self._frozen, equal_nan=True)
        if not valid or len(shown) - k > 64 + k // 8:
            # The last point may still move (the thinner's newest row): keep it out.
            k = len(shown) - 1 if len(shown) > 2 else 0
            self._frozen = shown[:k].copy()
            if k >= 2:
                self.old.setData(self._frozen[:, 0], self._frozen[:, 1], connect="finite")
        self.old.setVisible(k >= 2)
        tail = shown[k - 1 :] if k >= 2 else shown
        self.new.setData(tail[:, 0], tail[:, 1], connect="finite")
        self.new.show()


def _box_segments(centers: np.ndarray, half: np.ndarray) -> np.ndarray:
    """The four sides of axis-aligned rectangles as (8k, 2) segment end points."""
    c = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    h = np.asarray(half, dtype=np.float64).reshape(-1, 2)
    if len(c) == 0:
        return np.empty((0, 2))
    corners = [c + h * np.array(s) for s in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    sides = [np.stack([corners[k], corners[(k + 1) % 4]], axis=1) for k in range(4)]
    return np.concatenate(sides, axis=0).reshape(-1, 2)


class Contour2DView(pg.PlotWidget):
    """Top view of the surface with runs, minima, draggable starts and arrow overlays."""

    #: Run i's start was dropped at (x, y): after a drag, or by a plain click while i is selected.
    startMoved = Signal(int, float, float)
    #: Run i's start is being dragged through (x, y) (many per drag; for live previews).
    startDragged = Signal(int, float, float)
    #: Shift+click at (x, y): the person wants a new ball there.
    addBallRequested = Signal(float, float)
    #: The mouse is over data point (x, y).
    pointHovered = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        view_box = _ClickViewBox(lambda x, y, mods: self._left_click(x, y, mods))
        super().__init__(parent, viewBox=view_box, background=colormaps.BACKGROUND)
        self.setAspectLocked(True)
        self.setLabel("bottom", "x")
        self.setLabel("left", "y")
        self.setMenuEnabled(True)
        self.getPlotItem().hideButtons()

        self._image = pg.ImageItem(axisOrder="col-major")
        self._image.setZValue(-100)
        self.addItem(self._image, ignoreBounds=True)
        self._contours = pg.PlotCurveItem(
            pen=pg.mkPen(0, 0, 0, 120, width=1), connect="pairs", antialias=True
        )
        self._contours.setZValue(-50)
        _antialiased_path(self._contours)
        self.addItem(self._contours, ignoreBounds=True)
        # The filled map and its contour lines change only with the surface or the zoom, but
        # a moving ball repaints the plot 60 times a second: draw them once into a cached
        # pixmap (re-made by Qt whenever they or the view transform change).
        for item in (self._image, self._contours):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._contours_on = True

        # Minima sit above the balls with a see-through fill: a ball resting in a minimum and
        # the star marking it stay visible together.
        self._minima = pg.ScatterPlotItem(
            symbol="star",
            size=20,
            brush=pg.mkBrush(255, 255, 255, 70),
            pen=pg.mkPen("#ffffff", width=1.6),
        )
        self._local_minima = pg.ScatterPlotItem(
            symbol="t",
            size=14,
            brush=pg.mkBrush(200, 200, 200, 60),
            pen=pg.mkPen("#d0d0d0", width=1.4),
        )
        for item in (self._minima, self._local_minima):
            item.setZValue(45)
            self.addItem(item, ignoreBounds=True)

        self._colors: list[str] = []
        self._trails: list[_SplitTrail] = []
        self._thinners: list[TrailThinner] = []
        self._starts: list[_StartMarker] = []
        self._balls = pg.ScatterPlotItem(symbol="o", size=13)
        self._balls.setZValue(40)
        self._crosses = pg.ScatterPlotItem(symbol="x", size=17)
        self._crosses.setZValue(40)
        self._ring = pg.ScatterPlotItem(
            symbol="o", size=22, brush=None, pen=pg.mkPen("#ffffff", width=2)
        )
        self._ring.setZValue(39)
        for item in (self._balls, self._crosses, self._ring):
            self.addItem(item, ignoreBounds=True)

        self._arrows: dict[str, tuple[pg.PlotCurveItem, pg.PlotCurveItem]] = {}
        for kind in OVERLAY_KINDS + MAP_OVERLAY_KINDS:
            shadow = pg.PlotCurveItem(
                pen=pg.mkPen(0, 0, 0, 170, width=4.5), connect="pairs", antialias=True
            )
            color = OVERLAY_COLORS.get(kind) or MAP_OVERLAY_COLORS[kind]
            arrow = pg.PlotCurveItem(
                pen=pg.mkPen(color, width=2.2), connect="pairs", antialias=True
            )
            for z, item in ((30, shadow), (31, arrow)):
                _antialiased_path(item)
                item.setZValue(z)
                item.hide()
                self.addItem(item, ignoreBounds=True)
            self._arrows[kind] = (shadow, arrow)
        self._overlay_on = dict.fromkeys(OVERLAY_KINDS + MAP_OVERLAY_KINDS, False)

        self._selected: int | None = None
        self._box = ((-1.0, 1.0), (-1.0, 1.0))
        self._has_surface = False
        self._last_frame: dict | None = None
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.getViewBox().sigRangeChanged.connect(self._range_changed)
        self._build_explain_items()

    # ------------------------------------------------------------------------------ surface
    def set_surface(
        self,
        x: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        *,
        log: bool = False,
        cmap: str = colormaps.DEFAULT,
        levels: int = 20,
    ) -> None:
        """Show z[i, j] = f(x[i], y[j]) on evenly spaced ascending grids x (nx,), y (ny,).

        Colours follow the display height (log10(z - zmin + eps) when log), and the `levels`
        level lines are evenly spaced in it, so log-spaced in z when log is on.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        z = clean_grid(z)
        if x.ndim != 1 or y.ndim != 1 or len(x) < 2 or len(y) < 2:
            raise ValueError("x and y must be 1-D with at least 2 points each")
        if z.shape != (len(x), len(y)):
            raise ValueError(
                f"z must have shape (len(x), len(y)) = {(len(x), len(y))}, got {z.shape}"
            )
        for name, g in (("x", x), ("y", y)):
            d = np.diff(g)
            if not (d > 0).all() or np.ptp(d) > 1e-6 * abs(d.mean()) * len(d):
                raise ValueError(
                    f"{name} must be evenly spaced and ascending (an image has square cells)"
                )
        cm = colormaps.get(cmap)
        scale = HeightScale.fit(z, log=log)
        h = scale.height(z)
        dx, dy = x[1] - x[0], y[1] - y[0]
        self._image.setImage(
            h, levels=(scale.hmin, scale.hmax), axisOrder="col-major", autoLevels=False
        )
        self._image.setColorMap(cm)
        self._image.setRect(QRectF(x[0] - dx / 2, y[0] - dy / 2, dx * len(x), dy * len(y)))
        seg, _ = contour_segments(x, y, h, scale.levels(levels))
        flat = seg.reshape(-1, 2)
        self._contours.setData(flat[:, 0], flat[:, 1], connect="pairs")
        self._contours.setVisible(self._contours_on)
        box = ((float(x[0]), float(x[-1])), (float(y[0]), float(y[-1])))
        if box != self._box or not self._has_surface:
            # A new box is framed; the same box reshaped (a slider) keeps the person's zoom.
            self._box = box
            self._has_surface = True
            self.reset_view()

    def reset_view(self) -> None:
        """Fit the surface's box in the view."""
        (x0, x1), (y0, y1) = self._box
        self.getViewBox().setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.02)

    def set_contours_visible(self, visible: bool) -> None:
        self._contours_on = bool(visible)
        self._contours.setVisible(self._contours_on)

    def contours_visible(self) -> bool:
        return self._contours_on

    # ------------------------------------------------------------------------------ minima
    def set_minima(self, xy: np.ndarray, z: np.ndarray | None = None) -> None:
        """Known global minima (k, 2) as white stars (z is accepted for symmetry with 3-D)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self._minima.setData(pos=xy)

    def set_local_minima(self, xy: np.ndarray, z: np.ndarray | None = None) -> None:
        """Local minima (k, 2) as grey triangles."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self._local_minima.setData(pos=xy)

    # -------------------------------------------------------------------------------- runs
    def set_runs(self, colors: Sequence[str]) -> None:
        """One trail, ball and start marker per run, in these '#rrggbb' colours."""
        qcolors = [_color(c) for c in colors]
        for item in [i for t in self._trails for i in t.items] + self._starts:
            self.removeItem(item)
        self._colors = list(colors)
        self._trails, self._starts = [], []
        for i, c in enumerate(qcolors):
            trail = _SplitTrail(pg.mkPen(c, width=2.2))
            for item in trail.items:
                self.addItem(item, ignoreBounds=True)
            start = _StartMarker(
                pos=(0.0, 0.0),
                size=13,
                symbol="s",
                pen=pg.mkPen("#ffffff", width=1.5),
                brush=pg.mkBrush(c.red(), c.green(), c.blue(), 110),
                hoverPen=pg.mkPen("#ffffff", width=2.5),
                hoverBrush=pg.mkBrush(c),
            )
            start.setZValue(35)
            start.hide()
            start.sigPositionChanged.connect(lambda item, i=i: self._start_dragging(i, item))
            start.sigPositionChangeFinished.connect(lambda item, i=i: self._start_dropped(i, item))
            self.addItem(start, ignoreBounds=True)
            self._trails.append(trail)
            self._starts.append(start)
        self._thinners = [TrailThinner(self._trail_cell()) for _ in colors]
        self._brushes = [pg.mkBrush(c) for c in qcolors]
        self._pens = [pg.mkPen("#ffffff", width=1.5) for _ in qcolors]
        self._cross_pens = [pg.mkPen(c, width=2) for c in qcolors]
        self._balls.clear()
        self._crosses.clear()
        self._ring.clear()
        for shadow, arrow in self._arrows.values():
            shadow.hide()
            arrow.hide()
        self._box_items.hide()
        self._box_shadow.hide()
        if self._selected is not None and self._selected >= len(colors):
            self._selected = None
        self._last_frame = None

    def set_starts(self, xy: np.ndarray) -> None:
        """Place the start markers (n, 2) (before a run has a trail, or after a reset)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        for marker, p in zip(self._starts, xy, strict=False):
            if not np.isfinite(p).all():
                marker.hide()
                continue
            if not marker.moving:
                marker.setPos(float(p[0]), float(p[1]))
            marker.show()

    def set_selected(self, index: int | None) -> None:
        """Which run a plain click moves (None: clicks do nothing); drawn a little bolder."""
        self._selected = index
        if self._last_frame is not None:
            self.update_runs(**self._last_frame)

    def selected(self) -> int | None:
        return self._selected

    def update_runs(
        self,
        positions: np.ndarray,
        trails: Sequence[np.ndarray],
        visible: Sequence[bool],
        diverged: Sequence[bool],
        selected: int | None = None,
        *,
        gradients: np.ndarray | None = None,
        velocities: np.ndarray | None = None,
        steps: np.ndarray | None = None,
        gd_steps: np.ndarray | None = None,
        step_boxes: np.ndarray | None = None,
    ) -> None:
        """Draw the latest frame: positions (n, 2), trails[i] (k_i, 2) (extra columns ignored).

        A diverged run shows no ball but an X at its last finite point, and a dashed trail.
        `selected` also sets which run a plain click moves (see set_selected).
        `gd_steps` (n, 2): the plain gradient-descent step −lr·∇f for each ball; `step_boxes`
        (n, 2): half-sides of each ball's per-axis effective step box (NaN rows: none).
        """
        n = len(self._trails)
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        if len(positions) != n or len(trails) != n or len(visible) != n or len(diverged) != n:
            raise ValueError(f"set_runs announced {n} runs; got {len(positions)} positions")
        self._selected = selected
        self._last_frame = dict(
            positions=positions,
            trails=trails,
            visible=visible,
            diverged=diverged,
            selected=selected,
            gradients=gradients,
            velocities=velocities,
            steps=steps,
            gd_steps=gd_steps,
            step_boxes=step_boxes,
        )
        (x0, x1), (y0, y1) = self._box
        sx, sy = x1 - x0, y1 - y0
        stage = (x0 - sx, x1 + sx, y0 - sy, y1 + sy)

        ball_pos, ball_brush, ball_pen = [], [], []
        cross_pos, cross_brush, cross_pen = [], [], []
        for i in range(n):
            trail, start = self._trails[i], self._starts[i]
            if not visible[i]:
                trail.hide()
                start.hide()
                continue
            pts = np.asarray(trails[i], dtype=np.float64)
            pts = pts.reshape(len(pts), -1)[:, :2] if pts.size else np.empty((0, 2))
            pts = self._thinners[i].update(pts)
            if len(pts) and not start.moving:
                start.setPos(float(pts[0, 0]), float(pts[0, 1]))
            if len(pts):
                start.show()
            if len(pts) > MAX_TRAIL_POINTS:
                pts = pts[decimate_indices(len(pts), MAX_TRAIL_POINTS)]
            # Points far off the stage become gaps: Qt does not draw paths at 1e300 well.
            off = (
                (pts[:, 0] < stage[0])
                | (pts[:, 0] > stage[1])
                | (pts[:, 1] < stage[2])
                | (pts[:, 1] > stage[3])
            )
            shown = pts.copy()
            shown[off] = np.nan
            width = 3.4 if i == selected else 2.2
            if diverged[i]:
                pen = pg.mkPen(
                    _color(self._colors[i], 170), width=width, style=Qt.PenStyle.DashLine
                )
            else:
                pen = pg.mkPen(self._colors[i], width=width)
            trail.set(shown, pen)
            if diverged[i]:
                # The X goes where the run was last seen near the box, not far off-screen.
                near = (np.abs(pts[:, 0] - 0.5 * (x0 + x1)) <= 0.55 * sx) & (
                    np.abs(pts[:, 1] - 0.5 * (y0 + y1)) <= 0.55 * sy
                )
                inside = np.nonzero(near)[0] if near.any() else np.nonzero(~off)[0]
                if len(inside):
                    cross_pos.append(pts[inside[-1]])
                    cross_brush.append(self._brushes[i])
                    cross_pen.append(pg.mkPen("#000000", width=1))
                continue
            p = positions[i]
            if np.isfinite(p).all():
                ball_pos.append(p)
                ball_brush.append(self._brushes[i])
                ball_pen.append(self._pens[i])
        self._balls.setData(pos=np.asarray(ball_pos).reshape(-1, 2), brush=ball_brush, pen=ball_pen)
        self._crosses.setData(
            pos=np.asarray(cross_pos).reshape(-1, 2), brush=cross_brush, pen=cross_pen
        )
        if (
            selected is not None
            and 0 <= selected < n
            and visible[selected]
            and not diverged[selected]
            and np.isfinite(positions[selected]).all()
        ):
            self._ring.setData(pos=positions[selected : selected + 1])
        else:
            self._ring.clear()
        self._draw_arrows(
            positions, visible, diverged, gradients, velocities, steps, gd_steps, step_boxes
        )

    def _trail_cell(self) -> np.ndarray:
        """Trails are thinned to a grid of half a pixel (see TrailThinner)."""
        (x0, x1), (y0, y1) = self._box
        fallback = np.array([x1 - x0, y1 - y0]) / 2000.0
        try:
            px = np.abs(np.asarray(self.getViewBox().viewPixelSize(), dtype=np.float64))
        except Exception:  # not laid out yet
            return fallback
        if not (np.isfinite(px).all() and (px > 0).all()):
            return fallback
        return 0.5 * px

    def _range_changed(self, *_) -> None:
        """After a zoom in, thin the trails again to the finer pixels (or coarser, far out)."""
        if not self._thinners:
            return
        cell = self._trail_cell()
        old = self._thinners[0].cell
        if (old > 1.5 * cell).any() or (old < 0.25 * cell).any():
            self._thinners = [TrailThinner(cell) for _ in self._thinners]
            if self._last_frame is not None:
                self.update_runs(**self._last_frame)

    def _draw_arrows(
        self,
        positions,
        visible,
        diverged,
        gradients,
        velocities,
        steps,
        gd_steps=None,
        step_boxes=None,
    ) -> None:
        vectors = {"gradient": gradients, "velocity": velocities, "step": steps}
        vectors["gd_step"] = gd_steps
        ok = (
            np.asarray(visible, bool)
            & ~np.asarray(diverged, bool)
            & np.isfinite(positions).all(axis=1)
        )
        (x0, x1), (y0, y1) = self._box
        span = max(x1 - x0, y1 - y0)
        # With the GD step or the boxes on, steps, GD steps and boxes share one linear scale,
        # so their lengths compare honestly (the legend says by how much they are magnified).
        shared = self._displacement_scale(ok, steps, gd_steps, span)
        self._draw_step_boxes(positions, ok, step_boxes)
        self._update_legend()
        for kind, (shadow, arrow) in self._arrows.items():
            v = vectors[kind]
            if not self._overlay_on[kind] or v is None or not ok.any():
                shadow.hide()
                arrow.hide()
                continue
            v = np.asarray(v, dtype=np.float64).reshape(-1, 2)[ok]
            if kind == "gradient":
                v = -v
            if kind in ("step", "gd_step") and shared is not None:
                v = np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) * shared
            else:
                v = scale_arrows(v, 0.12 * span)
            seg = arrow_segments(positions[ok], v).reshape(-1, 2)
            for item in (shadow, arrow):
                item.setData(seg[:, 0], seg[:, 1], connect="pairs")
                item.setVisible(len(seg) > 0)

    # ----------------------------------------------------------------------------- overlays
    def set_overlay_visible(self, kind: str, visible: bool) -> None:
        """Toggle an arrow overlay: one of OVERLAY_KINDS ("gradient", "velocity", "step") or
        MAP_OVERLAY_KINDS ("gd_step": −lr·∇f, the plain gradient-descent step)."""
        if kind not in self._overlay_on:
            kinds = ", ".join(OVERLAY_KINDS + MAP_OVERLAY_KINDS)
            raise ValueError(f"Unknown overlay {kind!r}; choose one of {kinds}")
        self._overlay_on[kind] = bool(visible)
        if not visible:
            for item in self._arrows[kind]:
                item.hide()
        if self._last_frame is not None:
            self.update_runs(**self._last_frame)
        self._update_legend()

    def overlay_visible(self, kind: str) -> bool:
        return self._overlay_on[kind]

    # ------------------------------------------------------------- internals and explainer
    def _build_explain_items(self) -> None:
        """Items of the gradient field, the effective-step boxes, the legend and the explainer.

        Kept apart from the run items: they change with the surface (the field), with the
        optimizer state (the boxes) or with the explainer's stage, never with the trails.
        """
        self._field_on = False
        self._field_shadow = pg.PlotCurveItem(
            pen=pg.mkPen(0, 0, 0, 110, width=3.0), connect="pairs", antialias=True
        )
        self._field = pg.PlotCurveItem(
            pen=pg.mkPen(_color(FIELD_COLOR, 235), width=1.5), connect="pairs", antialias=True
        )
        for z, item in ((-20, self._field_shadow), (-19, self._field)):
            _antialiased_path(item)
            item.setZValue(z)
            item.hide()
            # the field changes with the surface only: a cached picture, like the contours
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self.addItem(item, ignoreBounds=True)
        self._field_log = False
        self._boxes_on = False
        self._box_shadow = pg.PlotCurveItem(
            pen=pg.mkPen(0, 0, 0, 170, width=4.0), connect="pairs", antialias=True
        )
        self._box_items = pg.PlotCurveItem(
            pen=pg.mkPen(BOX_COLOR, width=2.0), connect="pairs", antialias=True
        )
        for z, item in ((28, self._box_shadow), (29, self._box_items)):
            _antialiased_path(item)
            item.setZValue(z)
            item.hide()
            self.addItem(item, ignoreBounds=True)
        self._shared_scale: float | None = None
        self._box_scale = 1.0
        self._legend_text = ""
        # the explainer: one curve per arrow colour, the boxes, points and labels
        self._ex_shadow = pg.PlotCurveItem(
            pen=pg.mkPen(0, 0, 0, 190, width=6.0), connect="pairs", antialias=True
        )
        self._ex_shadow.setZValue(60)
        self.addItem(self._ex_shadow, ignoreBounds=True)
        self._ex_arrows: dict[str, pg.PlotCurveItem] = {}
        for kind, color in EXPLAIN_COLORS.items():
            item = pg.PlotCurveItem(pen=pg.mkPen(color, width=3.0), connect="pairs", antialias=True)
            item.setZValue(61)
            self.addItem(item, ignoreBounds=True)
            self._ex_arrows[kind] = item
        self._ex_boxes = pg.PlotCurveItem(
            pen=pg.mkPen(BOX_COLOR, width=2.4, style=Qt.PenStyle.DashLine),
            connect="pairs",
            antialias=True,
        )
        self._ex_boxes.setZValue(59)
        self.addItem(self._ex_boxes, ignoreBounds=True)
        self._ex_points = pg.ScatterPlotItem(
            symbol="o", size=15, brush=None, pen=pg.mkPen(EXPLAIN_COLORS["step"], width=2.5)
        )
        self._ex_points.setZValue(62)
        self.addItem(self._ex_points, ignoreBounds=True)
        self._ex_labels: list[pg.TextItem] = []
        for item in (self._ex_shadow, self._ex_boxes, *self._ex_arrows.values()):
            _antialiased_path(item)
            item.hide()
        self._ex_points.hide()
        self._explanation: tuple | None = None
        self._legend = QLabel(self)
        self._legend.setObjectName("contourLegend")
        self._legend.setStyleSheet(
            "QLabel#contourLegend { background: rgba(22, 24, 29, 200); color: #e0e0e0;"
            " border: 1px solid #444; border-radius: 4px; padding: 4px; }"
        )
        self._legend.move(58, 8)
        self._legend.hide()
        # the selected adaptive ball's numbers, beside its box (set_internals_label)
        self._internals_label = pg.TextItem(
            "", color=BOX_COLOR, anchor=(0.0, 1.0), fill=pg.mkBrush(22, 24, 29, 190)
        )
        self._internals_label.setZValue(70)
        self._internals_label.hide()
        self.addItem(self._internals_label, ignoreBounds=True)

    # -- the downhill field
    def set_gradient_field(
        self, x: np.ndarray, y: np.ndarray, gx: np.ndarray, gy: np.ndarray, *, log: bool = False
    ) -> None:
        """A grid of arrows pointing downhill (−∇f) at (x[i], y[j]); g[i, j] the gradient there.

        Lengths are normalised to the grid cell so the field reads at any scale: proportional
        to |∇f| / max |∇f|, or with ``log`` to log(1 + |∇f|/m) / log(1 + max/m) (m the median
        slope), so a surface whose slope spans decades still shows its gentle parts. Call it
        when the surface or the box changes, not every frame.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        gx = np.asarray(gx, dtype=np.float64).reshape(len(x), len(y))
        gy = np.asarray(gy, dtype=np.float64).reshape(len(x), len(y))
        px, py = np.meshgrid(x, y, indexing="ij")
        v = -np.stack([gx.ravel(), gy.ravel()], axis=1)
        v[~np.isfinite(v).all(axis=1)] = 0.0
        norms = np.hypot(v[:, 0], v[:, 1])
        top = float(norms.max()) if norms.size else 0.0
        cell = min(
            float(np.min(np.diff(x))) if len(x) > 1 else 1.0,
            float(np.min(np.diff(y))) if len(y) > 1 else 1.0,
        )
        self._field_log = bool(log)
        if top <= 0:
            seg = np.empty((0, 2))
        else:
            if log:
                m = float(np.median(norms[norms > 0]))
                lengths = np.log1p(norms / m) / np.log1p(top / m)
            else:
                lengths = norms / top
            with np.errstate(invalid="ignore", divide="ignore"):
                unit = np.where(norms[:, None] > 0, v / norms[:, None], 0.0)
            vec = unit * (lengths * 0.85 * cell)[:, None]
            origins = np.stack([px.ravel(), py.ravel()], axis=1) - vec / 2  # centred on the node
            seg = arrow_segments(origins, vec, head_fraction=0.35).reshape(-1, 2)
        for item in (self._field_shadow, self._field):
            item.setData(seg[:, 0], seg[:, 1], connect="pairs")
            item.setVisible(self._field_on and len(seg) > 0)
        self._update_legend()

    def set_gradient_field_visible(self, visible: bool) -> None:
        self._field_on = bool(visible)
        has = self._field.xData is not None and len(self._field.xData) > 0
        for item in (self._field_shadow, self._field):
            item.setVisible(self._field_on and has)
        self._update_legend()

    def gradient_field_visible(self) -> bool:
        return self._field_on

    # -- the effective-step boxes
    def set_step_boxes_visible(self, visible: bool) -> None:
        """Per-axis effective step boxes beside each adaptive ball (data via update_runs)."""
        self._boxes_on = bool(visible)
        if self._last_frame is not None:
            self.update_runs(**self._last_frame)
        else:
            self._box_items.hide()
            self._box_shadow.hide()
        self._update_legend()

    def step_boxes_visible(self) -> bool:
        return self._boxes_on

    def _displacement_scale(self, ok, steps, gd_steps, span) -> float | None:
        """One linear factor for steps and GD steps, so their lengths compare (None when the
        GD step is off: the step arrows then keep their own square-root scaling)."""
        if not self._overlay_on.get("gd_step"):
            self._shared_scale = None
            return None
        sizes = [0.0]
        for arr in (steps, gd_steps):
            if arr is None or not ok.any():
                continue
            a = np.asarray(arr, dtype=np.float64).reshape(-1, 2)[ok]
            n = np.hypot(a[:, 0], a[:, 1])
            n = n[np.isfinite(n)]
            if n.size:
                sizes.append(float(n.max()))
        top = max(sizes)
        scale = 1.0 if top <= 0 or top >= _TINY_STEP * span else 0.12 * span / top
        self._shared_scale = scale
        return scale

    def _draw_step_boxes(self, positions, ok, step_boxes) -> None:
        if not self._boxes_on or step_boxes is None:
            self._box_items.hide()
            self._box_shadow.hide()
            return
        half = np.asarray(step_boxes, dtype=np.float64).reshape(-1, 2)
        keep = ok & np.isfinite(half).all(axis=1) & (half > 0).any(axis=1)
        # The boxes' shape is the story (equal sides: every axis at the same pace), and a
        # step is often smaller than a ball: they get their own magnification, in the legend.
        (x0, x1), (y0, y1) = self._box
        span = max(x1 - x0, y1 - y0)
        top = float(np.hypot(half[keep, 0], half[keep, 1]).max()) if keep.any() else 0.0
        self._box_scale = 1.0 if top <= 0 or top >= 0.08 * span else 0.08 * span / top
        seg = _box_segments(positions[keep], half[keep] * self._box_scale)
        for item in (self._box_shadow, self._box_items):
            item.setData(seg[:, 0], seg[:, 1], connect="pairs")
            item.setVisible(len(seg) > 0)

    def _update_legend(self) -> None:
        """A small key for the overlays shown: what each colour is, which way, how scaled."""
        rows = []
        if self._field_on:
            how = "log length" if self._field_log else "length ∝ |∇f|"
            rows.append((FIELD_COLOR, f"−∇f field: downhill ({how})"))
        if self._overlay_on.get("gradient"):
            rows.append((OVERLAY_COLORS["gradient"], "−∇f at each ball: downhill"))
        if self._overlay_on.get("velocity"):
            rows.append((OVERLAY_COLORS["velocity"], "velocity / first moment"))
        if self._overlay_on.get("step"):
            rows.append((OVERLAY_COLORS["step"], "last step taken"))
        if self._overlay_on.get("gd_step"):
            rows.append((MAP_OVERLAY_COLORS["gd_step"], "−lr·∇f: plain GD step"))
        if self._boxes_on:
            k = self._box_scale
            rows.append(
                (BOX_COLOR, "per-axis effective step" + (f" (×{k:.3g})" if k != 1.0 else ""))
            )
        if self._shared_scale is not None and self._shared_scale != 1.0:
            rows.append(("#bbbbbb", f"steps drawn ×{self._shared_scale:.3g}"))
        text = "<br>".join(f"<span style='color:{c}'>■</span> {t}" for c, t in rows)
        if not rows:
            self._legend.hide()
        elif text != self._legend_text or self._legend.isHidden():
            self._legend.setText(text)
            self._legend.adjustSize()
            self._legend.show()
            self._legend.raise_()
        self._legend_text = text

    def set_internals_label(self, position: np.ndarray | None, text: str = "") -> None:
        """Numbers beside one ball (the selected adaptive run): its per-axis accumulator and
        effective learning rate, the data behind its effective-step box. None hides it."""
        label = self._internals_label
        if position is None or not np.all(np.isfinite(position)) or not text:
            label.hide()
            return
        if label.toPlainText() != text:
            label.setText(text)
        (x0, x1), (y0, y1) = self._box
        span = max(x1 - x0, y1 - y0)
        # beside the ball on the side with more room, so the numbers stay on the map
        right = float(position[0]) <= 0.5 * (x0 + x1)
        label.setAnchor((0.0, 1.0) if right else (1.0, 1.0))
        dx = 0.03 * span if right else -0.03 * span
        label.setPos(float(position[0]) + dx, float(position[1]) + 0.03 * span)
        label.show()

    def internals_label(self) -> str | None:
        """The text beside the selected ball's box, or None when none is shown (tests)."""
        label = self._internals_label
        return label.toPlainText() if label.isVisible() else None

    # -- the step-by-step explainer
    def show_explanation(self, stages: Sequence, index: int) -> None:
        """Draw stage ``index`` of an explanation (gdsim.engine.explain stages: arrows, points
        and boxes as plain data). Gradient-unit arrows share one normalised scale over all
        stages; displacements (steps, boxes) share another, magnified when small next to the
        box (the label says by how much). The landing stage draws the step at its true length,
        so its arrow ends on the landing point."""
        stages = tuple(stages)
        if not 0 <= index < len(stages):
            raise ValueError(f"stage {index} does not exist: there are {len(stages)}")
        (x0, x1), (y0, y1) = self._box
        span = max(x1 - x0, y1 - y0)
        grad_top, pos_top = 0.0, 0.0
        for st in stages:
            for a in st.arrows:
                n = float(np.hypot(*np.nan_to_num(a.vector)))
                if a.space == "gradient":
                    grad_top = max(grad_top, n)
                else:
                    pos_top = max(pos_top, n)
            for b in st.boxes:
                pos_top = max(pos_top, float(np.hypot(*np.nan_to_num(b.half))))
        g_scale = 0.3 * span / grad_top if grad_top > 0 else 1.0
        p_scale = 1.0 if pos_top <= 0 or pos_top >= 0.1 * span else 0.2 * span / pos_top
        stage = stages[index]
        if any(p.kind == "new_position" for p in stage.points):
            p_scale = 1.0  # where the ball lands: the step at its true length ends there
        self._explanation = (stages, index, p_scale)
        for label in self._ex_labels:
            self.removeItem(label)
        self._ex_labels = []
        segs: dict[str, list[np.ndarray]] = {k: [] for k in self._ex_arrows}
        for a in stage.arrows:
            k = g_scale if a.space == "gradient" else p_scale
            vec = np.nan_to_num(np.asarray(a.vector, dtype=np.float64)) * k
            seg = arrow_segments(np.asarray(a.origin)[None], vec[None], head_fraction=0.28)
            segs.get(a.kind, segs["velocity"]).append(seg.reshape(-1, 2))
            if len(seg):
                text = a.label + (f" (×{p_scale:.3g})" if a.space != "gradient" and k != 1 else "")
                self._add_label(text, np.asarray(a.origin) + vec, EXPLAIN_COLORS.get(a.kind))
        all_segs = []
        for kind, item in self._ex_arrows.items():
            pts = np.concatenate(segs[kind]) if segs[kind] else np.empty((0, 2))
            item.setData(pts[:, 0], pts[:, 1], connect="pairs")
            item.setVisible(len(pts) > 0)
            all_segs.append(pts)
        shadow = np.concatenate(all_segs)
        self._ex_shadow.setData(shadow[:, 0], shadow[:, 1], connect="pairs")
        self._ex_shadow.setVisible(len(shadow) > 0)
        boxes = [(np.asarray(b.center), np.asarray(b.half) * p_scale) for b in stage.boxes]
        if boxes:
            seg = _box_segments(np.array([c for c, _ in boxes]), np.array([h for _, h in boxes]))
            self._ex_boxes.setData(seg[:, 0], seg[:, 1], connect="pairs")
            for b, (c, h) in zip(stage.boxes, boxes, strict=True):
                self._add_label(b.label, c + h * np.array([1.0, -1.0]), BOX_COLOR)
        self._ex_boxes.setVisible(bool(boxes))
        pts = [np.asarray(p.xy, dtype=np.float64) for p in stage.points]
        self._ex_points.setData(pos=np.asarray(pts).reshape(-1, 2))
        self._ex_points.setVisible(bool(pts))
        for p in stage.points:
            self._add_label(p.label, np.asarray(p.xy), EXPLAIN_COLORS["step"])

    def _add_label(self, text: str, xy: np.ndarray, color: str | None) -> None:
        if not np.isfinite(xy).all():
            return
        label = pg.TextItem(text, color=color or "#ffffff", anchor=(0, 1), fill=(22, 24, 29, 170))
        label.setZValue(63)
        label.setPos(float(xy[0]), float(xy[1]))
        self.addItem(label, ignoreBounds=True)
        self._ex_labels.append(label)

    def clear_explanation(self) -> None:
        """Remove whatever the explainer drew."""
        self._explanation = None
        for label in self._ex_labels:
            self.removeItem(label)
        self._ex_labels = []
        for item in (self._ex_shadow, self._ex_boxes, self._ex_points, *self._ex_arrows.values()):
            item.hide()

    def explanation_shown(self) -> tuple[int, float] | None:
        """(stage index, displacement magnification) of the explanation drawn, or None."""
        if self._explanation is None:
            return None
        return self._explanation[1], self._explanation[2]

    def set_batch_contours(
        self,
        x: np.ndarray | None,
        y: np.ndarray | None = None,
        z: np.ndarray | None = None,
        *,
        color: str = "#ffffff",
        log: bool = False,
        levels: int = 12,
    ) -> None:
        """Level lines of a second surface z[i, j] = g(x[i], y[j]) over the map, dashed in
        `color`: the mini-batch loss the selected run's next step descends, drawn over the
        full loss so the difference ("stochastic") is seen. x None hides them."""
        lines = getattr(self, "_batch_lines", None)
        if lines is None:
            lines = pg.PlotCurveItem(connect="pairs", antialias=True)
            lines.setZValue(-40)  # over the full map's lines, under trails and balls
            _antialiased_path(lines)
            self.addItem(lines, ignoreBounds=True)
            self._batch_lines = lines
        if x is None or y is None or z is None:
            lines.hide()
            return
        z = clean_grid(z)
        scale = HeightScale.fit(z, log=log)
        seg, _ = contour_segments(
            np.asarray(x), np.asarray(y), scale.height(z), scale.levels(levels)
        )
        flat = seg.reshape(-1, 2)
        lines.setPen(pg.mkPen(_color(color, 230), width=1.6, style=Qt.PenStyle.DashLine))
        lines.setData(flat[:, 0], flat[:, 1], connect="pairs")
        lines.setVisible(len(flat) > 0)

    # ---------------------------------------------------------------------------- gestures
    def _left_click(self, x: float, y: float, modifiers) -> None:
        if modifiers & Qt.KeyboardModifier.ShiftModifier:
            self.addBallRequested.emit(x, y)
        elif self._selected is not None and 0 <= self._selected < len(self._starts):
            self._starts[self._selected].setPos(x, y)
            self.startMoved.emit(self._selected, x, y)

    def _start_dragging(self, i: int, item: _StartMarker) -> None:
        if item.moving:
            p = item.pos()
            self.startDragged.emit(i, float(p.x()), float(p.y()))

    def _start_dropped(self, i: int, item: _StartMarker) -> None:
        p = item.pos()
        self.startMoved.emit(i, float(p.x()), float(p.y()))

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        vb = self.getViewBox()
        if vb.sceneBoundingRect().contains(scene_pos):
            p = vb.mapSceneToView(scene_pos)
            self.pointHovered.emit(float(p.x()), float(p.y()))

    # ------------------------------------------------------------------------------ export
    def data_to_widget(self, xy: np.ndarray) -> np.ndarray:
        """Widget pixel coordinates (n, 2) of data points (n, 2), for tests and tooltips."""
        vb = self.getViewBox()
        out = []
        for x, y in np.asarray(xy, dtype=np.float64).reshape(-1, 2):
            scene = vb.mapViewToScene(QPointF(float(x), float(y)))
            w = self.mapFromScene(scene)
            out.append((w.x(), w.y()))
        return np.asarray(out).reshape(-1, 2)
