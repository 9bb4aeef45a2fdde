"""Loss against step for every run, on a log axis by default.

Optimizers are compared by how fast the loss falls over decades, which only a log axis shows.
A log axis cannot show a loss at or below zero, so then the curves are drawn shifted (loss
minus the lowest loss seen, or minus a known optimum f* given with set_reference) and the axis
label says so: the picture never silently drops points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from gdsim.ui.views import colormaps
from gdsim.ui.views.geometry import MinMaxThinner

#: How far below the smallest gap a shifted curve's floor sits, so its minimum is drawable.
_FLOOR = 1e-3
#: The convergence theory predicts, drawn dashed beside the measured curves.
PREDICTION_COLOR = "#ffffff"


class LossPlot(pg.PlotWidget):
    """Loss curves of all runs, a marker of the current step, a legend; log y by default."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=colormaps.BACKGROUND)
        pi = self.getPlotItem()
        pi.hideButtons()
        pi.setMenuEnabled(False)
        self.setLabel("bottom", "step")
        # An SI prefix on a log axis rescales the exponents ("x1e+27"): never wanted here.
        self.getAxis("left").enableAutoSIPrefix(False)
        self.getAxis("bottom").enableAutoSIPrefix(False)
        self.showGrid(x=True, y=True, alpha=0.15)
        # Long runs are thinned here, incrementally, to each run of steps' lowest and highest
        # loss (MinMaxThinner: what "peak" downsampling draws), so pyqtgraph's own clipping
        # and downsampling, O(steps) on every update and every range change, stay off.
        pi.setClipToView(False)
        pi.setDownsampling(False)
        self._legend = pi.addLegend(
            offset=(-10, 10), labelTextColor="#dddddd", brush=(22, 24, 29, 200)
        )
        self._step_line = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen("#9aa0a6", width=1, style=Qt.PenStyle.DashLine)
        )
        self._step_line.hide()
        self.addItem(self._step_line, ignoreBounds=True)
        # Theory's line runs on to tiny gaps the runs never reach: it must not set the range.
        self._prediction_item = pg.PlotDataItem(
            pen=pg.mkPen(PREDICTION_COLOR, width=2, style=Qt.PenStyle.DashLine), connect="finite"
        )
        self._prediction_item.hide()
        self.addItem(self._prediction_item, ignoreBounds=True)
        self._prediction: tuple[np.ndarray, str] | None = None
        self._prediction_first = 0
        self._floor = 0.0
        self._log = True
        self._reference: float | None = None
        self._labels: list[str] = []
        self._colors: list[str] = []
        self._curves: list[pg.PlotDataItem] = []
        self._crosses: list[pg.PlotDataItem] = []
        self._thinners: list[MinMaxThinner] = []
        self._last: tuple | None = None
        self._shift: float | None = None
        pi.setLogMode(y=True)
        self._update_axis_label()

    # -------------------------------------------------------------------------------- runs
    def set_runs(self, labels: Sequence[str], colors: Sequence[str]) -> None:
        """One curve per run with its legend label and '#rrggbb' colour (replaces the old)."""
        if len(labels) != len(colors):
            raise ValueError(f"{len(labels)} labels but {len(colors)} colours")
        for item in self._curves + self._crosses:
            self.removeItem(item)
        self._legend.clear()
        self._labels, self._colors = list(labels), list(colors)
        self._curves, self._crosses = [], []
        self._thinners = [MinMaxThinner() for _ in labels]
        for label, color in zip(labels, colors, strict=True):
            c = QColor(color)
            if not c.isValid():
                raise ValueError(f"Not a colour: {color!r} (expected '#rrggbb')")
            # A 1-px cosmetic pen: Qt strokes wide pens several times slower (about 10 ms
            # against 30 ms a frame for 8 curves of 2000 points), and this plot redraws often.
            curve = pg.PlotDataItem(
                pen=pg.mkPen(c, width=1), name=label, connect="finite", antialias=True
            )
            cross = pg.PlotDataItem(
                pen=None, symbol="x", symbolSize=14, symbolBrush=c, symbolPen=pg.mkPen(c, width=1)
            )
            # Antialiased: one path, as "auto" decides, without asking the pen on every paint.
            curve.curve.setSegmentedLineMode("off")
            cross.hide()
            self.addItem(curve)
            self.addItem(cross)
            self._curves.append(curve)
            self._crosses.append(cross)
        self._last = None

    def update_runs(
        self,
        losses: Sequence[np.ndarray],
        visible: Sequence[bool],
        diverged: Sequence[bool],
        *,
        step: int | None = None,
    ) -> None:
        """losses[i][k] is run i's loss after k steps. A diverged run's curve stops at its last
        finite value, marked with an X. `step` moves the current-step marker (as set_current_step).
        """
        n = len(self._curves)
        if len(losses) != n or len(visible) != n or len(diverged) != n:
            raise ValueError(f"set_runs announced {n} runs; got {len(losses)} loss arrays")
        self._last = (losses, visible, diverged)
        data = [np.asarray(loss, dtype=np.float64).reshape(-1) for loss in losses]
        data = [self._finite_prefix(d) if dv else d for d, dv in zip(data, diverged, strict=True)]
        thinned = [t.update(d) for t, d in zip(self._thinners, data, strict=True)]
        # The thinned series keep every run's extremes, which is all the shift and the
        # ceiling look at (the floor's smallest gap may come from fewer points).
        self._shift, floor = self._choose_shift([y for _, y in thinned], visible)
        shown = [(x, y if self._shift is None else y - self._shift + floor) for x, y in thinned]
        ceiling = self._ceiling([y for _, y in shown], visible, diverged)
        for i, ((x, y), curve, cross) in enumerate(
            zip(shown, self._curves, self._crosses, strict=True)
        ):
            if not visible[i] or len(y) == 0:
                curve.hide()
                cross.hide()
                continue
            if diverged[i] and ceiling is not None:
                # Leave the chart at the ceiling: the healthy runs keep the whole height.
                over = np.nonzero(y > ceiling)[0]
                if over.size:
                    x, y = x[: over[0] + 1], np.append(y[: over[0]], ceiling)
            curve.setData(x, y)
            curve.show()
            if diverged[i]:
                cross.setData([float(x[-1])], [float(y[-1])])
                cross.show()
            else:
                cross.hide()
        self._floor = floor
        self._draw_prediction(floor)
        self._update_axis_label()
        if step is not None:
            self.set_current_step(step)
        # Fit the range now, not while painting: a range that changes during a paint moves
        # the axes, which asks for a second paint of the whole plot.
        self.getViewBox().prepareForPaint()

    def _ceiling(self, shown, visible, diverged) -> float | None:
        """Top of the chart for diverged curves: 1.5 decades (log) or half the span (linear)
        above the highest value of the runs that did not diverge; None if there are none."""
        healthy = [
            y[np.isfinite(y)]
            for y, v, dv in zip(shown, visible, diverged, strict=True)
            if v and not dv
        ]
        if self._log:
            healthy = [h[h > 0] for h in healthy]
        healthy = [h for h in healthy if h.size]
        if not healthy:
            return None
        top = max(float(h.max()) for h in healthy)
        if self._log:
            return top * 10**1.5
        low = min(float(h.min()) for h in healthy)
        return top + 0.5 * max(top - low, abs(top), 1e-12)

    @staticmethod
    def _finite_prefix(d: np.ndarray) -> np.ndarray:
        ok = np.isfinite(d)
        return d if ok.all() else d[: int(np.argmin(ok))]

    def _choose_shift(
        self, data: list[np.ndarray], visible: Sequence[bool]
    ) -> tuple[float | None, float]:
        """(value to subtract or None, floor to add) so that every drawn value is honest.

        The floor only appears on a log axis when some loss equals the subtracted value: it
        sits three decades below the smallest positive gap, so that point is drawn, far down.
        """
        finite = [d[np.isfinite(d)] for d, v in zip(data, visible, strict=True) if v]
        finite = [f for f in finite if f.size]
        if self._reference is not None:
            shift = self._reference
        elif self._log and finite and min(float(f.min()) for f in finite) <= 0:
            shift = min(float(f.min()) for f in finite)
        else:
            return None, 0.0
        if not self._log or not finite:
            return shift, 0.0
        gaps = np.concatenate(finite) - shift
        if (gaps > 0).all():
            return shift, 0.0
        positive = gaps[gaps > 0]
        return shift, float(positive.min()) * _FLOOR if positive.size else 1e-12

    # ---------------------------------------------------------------------------- theory
    def set_prediction(
        self, losses: np.ndarray | None, label: str = "predicted", *, first: int = 0
    ) -> None:
        """A dashed line of the loss theory predicts at step first + k (losses[k]); None: off.

        It is shifted like the runs' curves, so on a log axis of loss - f* a predicted
        geometric convergence is a straight line to compare with the measured one.
        """
        if losses is None:
            if self._prediction is not None:
                self._prediction = None
                self._prediction_item.hide()
                self._legend.removeItem(self._prediction_item)
            return
        self._prediction = (np.asarray(losses, dtype=np.float64).reshape(-1), label)
        self._prediction_first = int(first)
        self._draw_prediction(self._floor)

    def prediction(self) -> np.ndarray | None:
        """The predicted losses as given to set_prediction (None when off)."""
        return None if self._prediction is None else self._prediction[0]

    def _draw_prediction(self, floor: float) -> None:
        if self._prediction is None:
            return
        values, label = self._prediction
        shown = values if self._shift is None else values - self._shift + floor
        if self._log:
            shown = np.where(shown > 0, shown, np.nan)
        steps = self._prediction_first + np.arange(len(shown), dtype=np.float64)
        self._prediction_item.setData(steps, shown)
        self._prediction_item.show()
        current = self._legend.getLabel(self._prediction_item)
        if current is None or current.text != label:
            self._legend.removeItem(self._prediction_item)
            self._legend.addItem(self._prediction_item, label)

    # ---------------------------------------------------------------------------- controls
    def set_log(self, log: bool) -> None:
        """Log (default) or linear y axis."""
        self._log = bool(log)
        self.getPlotItem().setLogMode(y=self._log)
        if self._last is not None:
            self.update_runs(*self._last)
        self._update_axis_label()

    def is_log(self) -> bool:
        return self._log

    def set_reference(self, value: float | None) -> None:
        """Plot loss - value (the gap to a known optimum f*) instead of the loss; None: off."""
        self._reference = None if value is None else float(value)
        if self._last is not None:
            self.update_runs(*self._last)
        self._update_axis_label()

    def set_current_step(self, step: int | None) -> None:
        """Move the dashed current-step line; None hides it."""
        if step is None:
            self._step_line.hide()
            return
        self._step_line.setValue(float(step))
        self._step_line.show()

    def axis_label(self) -> str:
        """The y-axis label as shown (it says when the curves are shifted)."""
        if self._reference is not None:
            text = f"loss − f* (f* = {self._reference:.4g})"
        elif self._shift is not None:
            text = f"loss − min loss (min = {self._shift:.4g})"
        else:
            text = "loss"
        return text + (" (log scale)" if self._log else "")

    def _update_axis_label(self) -> None:
        # Setting even the same label re-lays out the axis and repaints the plot again.
        text = self.axis_label()
        if text != getattr(self, "_shown_label", None):
            self._shown_label = text
            self.setLabel("left", text)
