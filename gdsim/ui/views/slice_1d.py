"""The 1-D view: the surface cut through the selected ball along one direction, with its tangent.

On the cut g(t) = f(p + t u) the derivative at the ball is the directional derivative
a = ∇f(p) · u, so the tangent line f(p) + a t is exactly what gradient descent "believes" about
the surface. The view draws the cut, the ball, that tangent, and for a step e the linear
prediction f(p) + a e beside the true f(p + e u), with the error between them printed: where the
two agree the linear model (and a small step) is safe; where they part, a step that long
overshoots.

The view knows nothing of optimizers: it takes the surface's value function and the ball's
position, gradient and velocity as plain arrays. A second value function (a mini-batch loss)
can be drawn beside the full one, dashed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from gdsim.ui.views import colormaps

ValueFunction = Callable[[np.ndarray], np.ndarray]
Box = tuple[tuple[float, float], tuple[float, float]]

#: Directions offered: the two axes, the gradient (steepest ascent) and the ball's velocity.
DIRECTIONS: dict[str, str] = {
    "x": "x axis",
    "y": "y axis",
    "gradient": "gradient ∇f",
    "velocity": "velocity (last step)",
}
#: Samples of the cut per redraw: smooth at any dock size, and cheap (one vectorised call).
SAMPLES = 400
CURVE_COLOR = "#4fc3f7"
BATCH_COLOR = "#b39ddb"
TANGENT_COLOR = "#ffd54f"
ERROR_COLOR = "#ff5252"
#: Relative error (see relative_error) below which the linear model counts as good.
GOOD_FIT = 0.1
#: A gradient below this (or a last step below this many box diagonals) has no direction.
VANISHING = 1e-12


class SliceState(NamedTuple):
    """What the view shows, in numbers (for the readout and for tests)."""

    direction: str
    u: np.ndarray  # unit direction (2,)
    t: np.ndarray  # (SAMPLES,) distance along u from the ball
    values: np.ndarray  # f(p + t u)
    f0: float  # f(p)
    slope: float  # a = ∇f(p) · u
    epsilon: float
    predicted: float  # f(p) + a e
    true: float  # f(p + e u)
    error: float  # true - predicted
    offset: float  # horizontal coordinate of the ball (p·u for an axis, else 0)


def t_range(position: np.ndarray, u: np.ndarray, box: Box) -> tuple[float, float]:
    """The t for which p + t u lies in the box; if the ball is outside it, the box's diagonal
    centred on the ball, so there is always something to draw."""
    lo, hi = -math.inf, math.inf
    for k, (b0, b1) in enumerate(box):
        if u[k] > 0:
            lo, hi = max(lo, (b0 - position[k]) / u[k]), min(hi, (b1 - position[k]) / u[k])
        elif u[k] < 0:
            lo, hi = max(lo, (b1 - position[k]) / u[k]), min(hi, (b0 - position[k]) / u[k])
        elif not b0 <= position[k] <= b1:
            lo, hi = math.inf, -math.inf
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo <= 0 or lo > 0 or hi < 0:
        half = 0.5 * math.hypot(box[0][1] - box[0][0], box[1][1] - box[1][0])
        return -half, half
    return lo, hi


def relative_error(state: SliceState) -> float:
    """|true - prediction| over the larger of the predicted and the true change: 0 when the
    tangent is exact, about 1 when it misses the change entirely (also where a = 0, which
    predicts no change at all), more when it gets even the direction wrong."""
    change = max(abs(state.slope * state.epsilon), abs(state.true - state.f0))
    if not math.isfinite(state.error):
        return math.inf
    return abs(state.error) / change if change > 0 else 0.0


class SliceView(QWidget):
    """Direction combo and step e on top, the cut below, the numbers under it."""

    directionChanged = Signal(str)
    epsilonChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("slice_view")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        controls = QHBoxLayout()
        self.direction_combo = QComboBox()
        self.direction_combo.setObjectName("slice_direction")
        for key, text in DIRECTIONS.items():
            self.direction_combo.addItem(text, key)
        self._combo_tip = (
            "Direction u of the cut through the selected ball: an axis, the gradient (the "
            "slope is then |∇f|, the steepest) or the ball's velocity (its last step)"
        )
        self.direction_combo.setToolTip(self._combo_tip)
        self.epsilon_spin = QDoubleSpinBox()
        self.epsilon_spin.setObjectName("slice_epsilon")
        self.epsilon_spin.setDecimals(4)
        self.epsilon_spin.setRange(1e-4, 100.0)
        self.epsilon_spin.setSingleStep(0.05)
        self.epsilon_spin.setValue(0.3)
        self.epsilon_spin.setToolTip(
            "Step e along u: the tangent predicts f(p + e·u) ≈ f(p) + a·e; the true value is "
            "drawn beside it and the error printed. Try a small e, then a large one."
        )
        controls.addWidget(QLabel("direction"))
        controls.addWidget(self.direction_combo, 1)
        controls.addWidget(QLabel("step e"))
        controls.addWidget(self.epsilon_spin)
        layout.addLayout(controls)

        self.plot = pg.PlotWidget(background=colormaps.BACKGROUND)
        self.plot.setObjectName("slice_plot")
        pi = self.plot.getPlotItem()
        pi.hideButtons()
        pi.setMenuEnabled(False)
        pi.showGrid(x=True, y=True, alpha=0.15)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)
        self.plot.setLabel("left", "f")
        self._legend = pi.addLegend(
            offset=(-10, 10), labelTextColor="#dddddd", brush=(22, 24, 29, 160)
        )
        # Under the data: in a short dock the key's corner is often where the ball is, and
        # the ball matters more than the key.
        self._legend.setZValue(-1)
        self.curve = pg.PlotDataItem(
            pen=pg.mkPen(CURVE_COLOR, width=2), connect="finite", name="f along u"
        )
        self.batch_curve = pg.PlotDataItem(
            pen=pg.mkPen(BATCH_COLOR, width=2, style=Qt.PenStyle.DashLine),
            connect="finite",
            name="mini-batch loss",
        )
        self.tangent = pg.PlotDataItem(
            pen=pg.mkPen(TANGENT_COLOR, width=2), name="tangent f(p) + a·t"
        )
        self.error_bar = pg.PlotDataItem(pen=pg.mkPen(ERROR_COLOR, width=3))
        self.predicted_dot = pg.ScatterPlotItem(
            size=12, pen=pg.mkPen(TANGENT_COLOR, width=2), brush=pg.mkBrush(0, 0, 0, 0)
        )
        self.true_dot = pg.ScatterPlotItem(size=10, pen=pg.mkPen("#ffffff"), brush=CURVE_COLOR)
        self.ball = pg.ScatterPlotItem(size=16, pen=pg.mkPen("#ffffff", width=1.5))
        # For f(x) only, every ball lives on this curve: the others and each ball's recent
        # iterates (dots joined by chords, so a step that jumps over a minimum is seen).
        self.others = pg.ScatterPlotItem(size=13, pen=pg.mkPen("#ffffff", width=1.0))
        self.iterates: list[pg.PlotDataItem] = []
        self.message = pg.TextItem("", color="#dddddd", anchor=(0.5, 0.5))
        self.plot.addItem(self.curve)
        self.plot.addItem(self.batch_curve)
        # The tangent spans the whole cut and can climb far above it: it must not stretch
        # the range that the curve sets.
        self.plot.addItem(self.tangent, ignoreBounds=True)
        self.plot.addItem(self.error_bar)
        self.plot.addItem(self.predicted_dot)
        self.plot.addItem(self.true_dot)
        self.plot.addItem(self.ball)
        self.plot.addItem(self.others)
        self.plot.addItem(self.message, ignoreBounds=True)
        self.others.setZValue(9)
        self.others.hide()
        self.tangent.setZValue(5)
        self.error_bar.setZValue(6)
        for item in (self.predicted_dot, self.true_dot):
            item.setZValue(8)
        self.ball.setZValue(10)
        self._legend.removeItem(self.batch_curve)
        layout.addWidget(self.plot, 1)

        self.readout = QLabel()
        self.readout.setObjectName("slice_readout")
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.readout)

        self._value: ValueFunction | None = None
        self._batch: ValueFunction | None = None
        self._box: Box = ((-1.0, 1.0), (-1.0, 1.0))
        self._ball: tuple[np.ndarray, np.ndarray, np.ndarray, str] | None = None
        self._one_d = False
        self._balls: tuple[list[np.ndarray], list[str]] = ([], [])  # (trails, colours)
        self._key: tuple | None = None
        self.state: SliceState | None = None
        self.direction_combo.currentIndexChanged.connect(self._direction_changed)
        self.epsilon_spin.valueChanged.connect(self._epsilon_changed)
        self.show_message("No ball selected")

    # ------------------------------------------------------------------------------ inputs
    def set_function(self, value: ValueFunction, box: Box, *, one_d: bool = False) -> None:
        """The surface's value function (points (n, 2) -> (n,)) and the box it lives in.

        For a function of x only the cut is the function itself: the direction is fixed to x.
        """
        self._value = value
        self._box = ((float(box[0][0]), float(box[0][1])), (float(box[1][0]), float(box[1][1])))
        self._one_d = bool(one_d)
        if one_d:
            self.set_direction("x")
        self.direction_combo.setEnabled(not one_d)
        self.direction_combo.setToolTip(
            "f depends on x only: the cut along x is the function itself"
            if one_d
            else self._combo_tip
        )
        self._redraw()

    def set_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"Unknown direction {direction!r}; choose one of {list(DIRECTIONS)}")
        self.direction_combo.setCurrentIndex(self.direction_combo.findData(direction))

    def direction(self) -> str:
        return str(self.direction_combo.currentData())

    def set_epsilon(self, epsilon: float) -> None:
        self.epsilon_spin.setValue(float(epsilon))

    def epsilon(self) -> float:
        return float(self.epsilon_spin.value())

    def update_ball(
        self,
        position: np.ndarray,
        gradient: np.ndarray,
        velocity: np.ndarray,
        *,
        color: str = "#ff5555",
        batch_value: ValueFunction | None = None,
    ) -> None:
        """The selected ball: where it is, ∇f there, and its velocity (any (2,) arrays).

        `batch_value`, if given, is the loss of the current mini-batch as a function of the
        point; it is drawn dashed beside the full loss. Redraws only when something changed.
        """
        self._ball = (
            np.asarray(position, dtype=np.float64).reshape(2).copy(),
            np.asarray(gradient, dtype=np.float64).reshape(2).copy(),
            np.asarray(velocity, dtype=np.float64).reshape(2).copy(),
            color,
        )
        self._batch = batch_value
        self._redraw()

    def update_balls(self, trails: list[np.ndarray], colors: list[str]) -> None:
        """Every visible ball's recent positions ((m, 2) each, the last row where it is now),
        drawn on the curve when f depends on x only: there the cut is the whole function, so
        all balls belong on it, each with its last iterates. Ignored for surfaces."""
        self._balls = (
            [np.asarray(t, dtype=np.float64).reshape(-1, 2).copy() for t in trails],
            list(colors),
        )
        self._redraw()

    def clear_ball(self, message: str = "No ball selected") -> None:
        self._ball = None
        self._key = None
        self.show_message(message)

    # ---------------------------------------------------------------------------- drawing
    def _direction_changed(self) -> None:
        self._redraw()
        self.directionChanged.emit(self.direction())

    def _epsilon_changed(self, value: float) -> None:
        self._redraw()
        self.epsilonChanged.emit(float(value))

    def _unit(self, gradient: np.ndarray, velocity: np.ndarray) -> tuple[np.ndarray | None, str]:
        """The unit direction for the chosen kind, or None and the reason there is none."""
        kind = self.direction()
        if kind == "x":
            return np.array([1.0, 0.0]), ""
        if kind == "y":
            return np.array([0.0, 1.0]), ""
        vector = gradient if kind == "gradient" else velocity
        norm = float(np.hypot(*vector)) if np.all(np.isfinite(vector)) else math.nan
        if not math.isfinite(norm):
            return None, f"The {kind} is not finite here: no direction to cut along."
        (x0, x1), (y0, y1) = self._box
        # Below this the direction of the vector is rounding noise, not a direction: a ball
        # settled in a minimum has |∇f| ~ 1e-17 pointing anywhere.
        tiny = VANISHING * (1.0 if kind == "gradient" else math.hypot(x1 - x0, y1 - y0))
        if norm <= tiny:
            if kind == "gradient":
                return None, (
                    f"The gradient vanishes here (|∇f| = {norm:.2g}): a stationary point, no "
                    "direction of steepest ascent. Pick the x or y axis."
                )
            return None, (
                f"The ball is not moving (last step {norm:.2g}): play or step first, or pick "
                "another direction."
            )
        return vector / norm, ""

    def _redraw(self) -> None:
        if self._value is None or self._ball is None:
            return
        position, gradient, velocity, color = self._ball
        key = (
            position.tobytes(),
            gradient.tobytes(),
            velocity.tobytes(),
            color,
            self.direction(),
            self.epsilon(),
            id(self._value),
            id(self._batch),
            self._box,
            self._one_d,
            tuple(t.tobytes() for t in self._balls[0]) if self._one_d else (),
            tuple(self._balls[1]) if self._one_d else (),
        )
        if key == self._key:
            return
        self._key = key
        if not np.all(np.isfinite(position)):
            self.show_message("The ball has left the finite world (diverged): nothing to cut.")
            return
        u, why = self._unit(gradient, velocity)
        if u is None:
            self.show_message(why)
            return
        e = self.epsilon()
        lo, hi = t_range(position, u, self._box)
        lo, hi = min(lo, -0.1 * e), max(hi, 1.1 * e)  # the prediction must be on screen
        t = np.linspace(lo, hi, SAMPLES)
        points = position[None, :] + t[:, None] * u[None, :]
        probe = np.array([position, position + e * u])
        with np.errstate(all="ignore"):
            values = np.asarray(self._value(points), dtype=np.float64).reshape(-1)
            f0, true = (float(v) for v in np.asarray(self._value(probe), dtype=np.float64))
        slope = float(gradient @ u)
        predicted = f0 + slope * e
        kind = self.direction()
        offset = float(position @ u) if kind in ("x", "y") else 0.0
        self.state = SliceState(
            kind, u, t, values, f0, slope, e, predicted, true, true - predicted, offset
        )
        s = t + offset  # horizontal coordinate: x (or y) itself for an axis cut
        self.message.hide()
        self.curve.setData(s, values)
        self.curve.show()
        if self._batch is not None:
            with np.errstate(all="ignore"):
                batch = np.asarray(self._batch(points), dtype=np.float64).reshape(-1)
            self.batch_curve.setData(s, batch)
            self.batch_curve.show()
            if self._legend.getLabel(self.batch_curve) is None:
                self._legend.addItem(self.batch_curve, "mini-batch loss")
        else:
            self.batch_curve.hide()
            self._legend.removeItem(self.batch_curve)
        self.tangent.setData([s[0], s[-1]], [f0 + slope * t[0], f0 + slope * t[-1]])
        self.tangent.show()
        self.ball.setData([offset], [f0], brush=QColor(color))
        self.ball.show()
        self.predicted_dot.setData([offset + e], [predicted])
        self.true_dot.setData([offset + e], [true])
        self.error_bar.setData([offset + e, offset + e], [predicted, true])
        for item in (self.predicted_dot, self.true_dot, self.error_bar):
            item.show()
        self._draw_balls()
        self.plot.setLabel("bottom", self._axis_label(kind, u))
        self.readout.setText(self._readout_html())

    def _draw_balls(self) -> None:
        """The other balls and every ball's recent iterates on the curve (f(x) only)."""
        trails, colors = self._balls if self._one_d else ([], [])
        while len(self.iterates) < len(trails):
            item = pg.PlotDataItem(symbol="o", symbolSize=6, connect="finite")
            item.setZValue(4)
            self.plot.addItem(item)
            self.iterates.append(item)
        xs, ys, brushes = [], [], []
        for k, item in enumerate(self.iterates):
            if k >= len(trails) or len(trails[k]) == 0:
                item.hide()
                continue
            t = trails[k]
            with np.errstate(all="ignore"):
                f = np.asarray(self._value(t), dtype=np.float64).reshape(-1)
            ok = np.isfinite(t).all(axis=1) & np.isfinite(f)
            c = QColor(colors[k])
            faint = QColor(c)
            faint.setAlpha(150)
            item.setData(
                t[ok, 0],
                f[ok],
                pen=pg.mkPen(faint, width=1.2),
                symbolBrush=faint,
                symbolPen=None,
            )
            item.show()
            if ok[-1]:
                xs.append(t[-1, 0])
                ys.append(f[-1])
                brushes.append(pg.mkBrush(c))
        self.others.setData(xs, ys, brush=brushes)
        self.others.setVisible(bool(xs))

    def _axis_label(self, kind: str, u: np.ndarray) -> str:
        if kind in ("x", "y"):
            return kind
        return f"t: distance from the ball along u = ({u[0]:.3g}, {u[1]:.3g}) ({kind})"

    def _readout_html(self) -> str:
        st = self.state
        assert st is not None
        relative = relative_error(st)
        if not math.isfinite(relative):
            verdict = "f is not finite at p + e·u"
        elif relative <= GOOD_FIT:
            verdict = (
                f"<span style='color:#7bd88f'>the tangent is good here ({relative:.1%})</span>"
            )
        else:
            verdict = (
                f"<span style='color:{ERROR_COLOR}'>the tangent is off by {relative:.0%} of "
                "the change: a step this long leaves the linear regime</span>"
            )
        return (
            f"slope a = ∇f·u = <b>{st.slope:.6g}</b> &nbsp; f(p) = {st.f0:.6g}<br>"
            f"prediction f(p) + a·e = {st.predicted:.6g} &nbsp; true f(p + e·u) = "
            f"{st.true:.6g} &nbsp; error = <b>{st.error:.3g}</b> — {verdict}"
        )

    def show_message(self, text: str) -> None:
        """Say why there is nothing to draw (no bogus direction), in the plot and below it."""
        self.state = None
        for item in (
            self.curve,
            self.batch_curve,
            self.tangent,
            self.ball,
            self.predicted_dot,
            self.true_dot,
            self.error_bar,
            self.others,
            *self.iterates,
        ):
            item.hide()
        self.message.setText(text)
        vb = self.plot.getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        self.message.setPos(0.5 * (x0 + x1), 0.5 * (y0 + y1))
        self.message.show()
        self.readout.setText(text)

    # ------------------------------------------------------------------------------ tests
    def data_to_widget(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates in the plot widget (n, 2) of plot points (n, 2)."""
        vb = self.plot.getViewBox()
        out = []
        for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2):
            w = self.plot.mapFromScene(vb.mapViewToScene(QPointF(float(x), float(y))))
            out.append((w.x(), w.y()))
        return np.asarray(out).reshape(-1, 2)
