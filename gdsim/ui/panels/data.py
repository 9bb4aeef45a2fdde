"""The data panel: the training data of a neural-network surface and each ball's model.

On an NN surface a ball's position (x, y) *is* a model's two weights, so the panel draws that
model's output over the data in the ball's colour: as the ball rolls, the fit moves. The points
of the mini-batch the selected run's next step uses are ringed in its colour, which makes a
mini-batch something you see rather than a word. Surfaces without data get a short explanation
instead of an empty plot. The panel only draws what it is given (the surface's Dataset and the
frame's positions and batches); it knows nothing of optimizers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from gdsim.ui.views import colormaps

#: Colours of the data points: class 0 / class 1 of the logistic neuron, or all regression data.
CLASS_COLORS = ("#cfcfcf", "#c07040")
#: Points along the u axis of each fit curve.
CURVE_POINTS = 200

NO_DATA_TEXT = (
    "<p><b>No data on this surface.</b></p>"
    "<p>This surface is a formula, not a model trained on data, so there is nothing to fit "
    "and no mini-batches.</p>"
    "<p>Choose one of the <b>NN</b> surfaces in the Surface panel (logistic neuron, linear "
    "regression, tanh net): there each ball's position is a model's two weights, and this "
    "panel shows the data and every ball's fit moving as the ball rolls.</p>"
)

_AXES = {
    "logistic": ("input u", "class / σ(w·u + b)"),
    "linear": ("input u", "target v / w·u + b"),
    "tanh": ("input u", "target v / w₂·tanh(w₁·u)"),
}


def batch_run(
    selected: int | None, visible: Sequence[bool], batches: Sequence[np.ndarray | None]
) -> int | None:
    """Whose mini-batch to show: the selected run's if it is visible and has one, otherwise
    the first visible run with one (so a fresh window shows something), else None."""
    n = len(batches)
    ok = selected is not None and 0 <= selected < n and visible[selected]
    if ok and batches[selected] is not None:  # type: ignore[index]
        return selected
    return next((i for i in range(n) if visible[i] and batches[i] is not None), None)


class DataPanel(QWidget):
    """Scatter of the data, one fit curve per visible run, rings on the next mini-batch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self._stack = QStackedWidget()
        layout.addWidget(self._stack)

        self.message = QLabel(NO_DATA_TEXT)
        self.message.setObjectName("data_message")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setMargin(12)
        self._stack.addWidget(self.message)

        holder = QWidget()
        inner = QVBoxLayout(holder)
        inner.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget(background=colormaps.BACKGROUND)
        self.plot.setObjectName("data_plot")
        pi = self.plot.getPlotItem()
        pi.hideButtons()
        pi.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.setToolTip(
            "The training data and each ball's model: a ball's position is the model's two "
            "weights, so its curve moves as it rolls. Rings mark the mini-batch the selected "
            "run's next step uses."
        )
        inner.addWidget(self.plot, 1)
        self.caption = QLabel()
        self.caption.setObjectName("data_caption")
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: #888;")
        inner.addWidget(self.caption)
        self._stack.addWidget(holder)

        self._points = [
            pg.ScatterPlotItem(size=7, brush=pg.mkBrush(c), pen=pg.mkPen("#000000", width=0.5))
            for c in CLASS_COLORS
        ]
        self._rings = pg.ScatterPlotItem(symbol="o", size=15, brush=None)
        self._rings.setZValue(20)
        for item in (*self._points, self._rings):
            self.plot.addItem(item)
        self._curves: list[pg.PlotCurveItem] = []
        self._surface: Any = None
        self._xs = np.linspace(-1.0, 1.0, CURVE_POINTS)
        self.show_surface(None)

    # ------------------------------------------------------------------ model -> view
    def has_data(self) -> bool:
        return self._surface is not None and getattr(self._surface, "data", None) is not None

    def show_surface(self, surface: Any) -> None:
        """Show this surface's data (or the explanation when it has none)."""
        self._surface = surface
        data = getattr(surface, "data", None)
        for curve in self._curves:
            self.plot.removeItem(curve)
        self._curves = []
        self._rings.clear()
        if data is None:
            for item in self._points:
                item.clear()
            self._stack.setCurrentIndex(0)
            return
        self._stack.setCurrentIndex(1)
        x, y = data.x, data.y
        if data.kind == "logistic":
            self._points[0].setData(x[y == 0], y[y == 0])
            self._points[1].setData(x[y == 1], y[y == 1])
        else:
            self._points[0].setData(x, y)
            self._points[1].clear()
        bottom, left = _AXES[data.kind]
        self.plot.setLabel("bottom", bottom)
        self.plot.setLabel("left", left)
        lo, hi = float(x.min()), float(x.max())
        pad = 0.08 * (hi - lo)
        self._xs = np.linspace(lo - pad, hi + pad, CURVE_POINTS)
        ylo, yhi = (-0.1, 1.1) if data.kind == "logistic" else (float(y.min()), float(y.max()))
        ypad = 0.1 * (yhi - ylo)
        # The range is the data's, fixed: a run diverging must not zoom the data out of sight.
        self.plot.getViewBox().disableAutoRange()
        self.plot.setRange(
            xRange=(lo - pad, hi + pad), yRange=(ylo - ypad, yhi + ypad), padding=0.0
        )
        self.caption.setText(
            f"{data.m} points (data seed {data.seed}). Each curve is a ball's model at its "
            "current position; rings: the selected run's next mini-batch."
        )

    def update_runs(
        self,
        surface: Any,
        positions: np.ndarray,
        colors: Sequence[str],
        visible: Sequence[bool],
        batches: Sequence[np.ndarray | None],
        selected: int | None,
    ) -> None:
        """Draw each visible run's model at its position (n, 2) in its colour, and ring the
        batch of the selected run (or, with nothing selected, of the first visible run that
        has one). A new surface is shown first."""
        if surface is not self._surface:
            self.show_surface(surface)
        data = getattr(surface, "data", None)
        if data is None:
            return
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        n = len(positions)
        while len(self._curves) < n:
            curve = pg.PlotCurveItem(antialias=True)
            curve.setZValue(10)
            self.plot.addItem(curve)
            self._curves.append(curve)
        while len(self._curves) > n:
            self.plot.removeItem(self._curves.pop())
        with np.errstate(all="ignore"):
            ys = data.predict(positions[:, :1], positions[:, 1:], self._xs[None, :])
        for i, curve in enumerate(self._curves):
            ok = visible[i] and np.isfinite(positions[i]).all()
            if ok:
                width = 3.0 if i == selected else 2.0
                curve.setPen(pg.mkPen(colors[i], width=width))
                curve.setData(self._xs, np.clip(ys[i], -1e6, 1e6))
            curve.setVisible(bool(ok))
        ring = batch_run(selected, visible, batches)
        if ring is None:
            self._rings.clear()
            return
        idx = np.asarray(batches[ring])
        self._rings.setData(
            data.x[idx], data.y[idx], pen=pg.mkPen(colors[ring], width=2.2), brush=None
        )

    def ringed(self) -> np.ndarray:
        """The (u, v) of the ringed points (k, 2): what a test or a tooltip asks."""
        x, y = self._rings.getData()
        return np.column_stack([x, y]) if x is not None else np.empty((0, 2))
