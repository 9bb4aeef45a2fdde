"""The sweep panel: one run's outcome over a grid of two hyperparameters, as in `gdsim sweep`.

The grid is stepped by gdsim.engine.sweep (every cell at once) on a background thread; the map
shows where the run converges, how fast, and where it diverges. Clicking a cell hands its two
values to the window, which sets them on the run and plays it from its start.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gdsim.engine import sweep as sweeps
from gdsim.ui.views import colormaps
from gdsim.ui.widgets import BAD_STYLE

METRICS = ("final_loss", "steps_to_tol", "diverged")
DIVERGED_RGBA = (214, 39, 40, 255)
NEVER_RGBA = (150, 150, 150, 255)


def _display(axis: sweeps.Axis) -> np.ndarray:
    return np.log10(axis.values) if axis.log else np.asarray(axis.values, dtype=float)


def metric_image(result: sweeps.SweepResult, metric: str, cmap: str = "viridis") -> np.ndarray:
    """RGBA (nx, ny, 4) uint8 for ImageItem (column-major): colour by the metric (log-scaled for
    losses and step counts), diverged cells red, cells that never reached the tolerance grey."""
    values = np.asarray(result.metric(metric), dtype=float)  # (ny, nx)
    diverged = np.asarray(result.diverged, dtype=bool)
    finite = np.isfinite(values) & ~diverged
    unit = np.zeros_like(values)
    if metric == "diverged":
        unit = np.where(diverged, 1.0, 0.0)
    elif finite.any():
        shown = values[finite]
        if metric == "final_loss" and result.f_star is not None:
            shown = shown - result.f_star
        v = np.log10(np.maximum(shown, 1e-300)) if metric != "diverged" else shown
        lo, hi = float(v.min()), float(v.max())
        unit[finite] = (v - lo) / (hi - lo) if hi > lo else 0.5
    rgba = (np.asarray(colormaps.map_unit(cmap, unit)) * 255).astype(np.uint8)
    rgba = rgba.reshape(*values.shape, 4)
    rgba[~np.isfinite(values) & ~diverged] = NEVER_RGBA
    rgba[diverged] = DIVERGED_RGBA
    return np.ascontiguousarray(np.transpose(rgba, (1, 0, 2)))


class SweepPanel(QWidget):
    #: (x name, x value, y name, y value) of a clicked cell.
    cellChosen = Signal(str, float, str, float)
    computeRequested = Signal()
    finished = Signal(bool)  # a sweep ended: succeeded or not

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        form = QFormLayout()
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("The run whose optimizer, start and settings are swept")
        self.x_edit = QLineEdit("lr=1e-4:1:log:60")
        self.y_edit = QLineEdit("momentum=0:0.99:60")
        for edit, axis in ((self.x_edit, "x"), (self.y_edit, "y")):
            edit.setToolTip(
                f"The {axis} axis: NAME=LOW:HIGH:N (linear) or NAME=LOW:HIGH:log:N;"
                " names are the optimizer's hyperparameters (beta1, beta2 for betas)"
            )
        self.metric = QComboBox()
        self.metric.addItems(list(METRICS))
        self.metric.setToolTip(
            "final_loss: f - f* after the steps; steps_to_tol: first step within tolerance;"
            " diverged: where it blows up"
        )
        self.steps = QSpinBox()
        self.steps.setRange(1, 100_000)
        self.steps.setValue(300)
        self.steps.setToolTip("Steps per cell")
        form.addRow("run", self.run_combo)
        form.addRow("x axis", self.x_edit)
        form.addRow("y axis", self.y_edit)
        form.addRow("metric", self.metric)
        form.addRow("steps", self.steps)
        layout.addLayout(form)
        self.compute_button = QPushButton("Compute map")
        self.compute_button.setToolTip("Step every cell of the grid at once (a few seconds)")
        layout.addWidget(self.compute_button)
        self.message = QLabel("Click a cell to run with its settings.")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(220)
        self.plot.setBackground(colormaps.BACKGROUND)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.plot.addItem(self.image)
        self.cross = pg.ScatterPlotItem(
            symbol="+", size=16, pen=pg.mkPen("#ffffff", width=2), brush=None
        )
        self.plot.addItem(self.cross)
        layout.addWidget(self.plot, 1)
        self.result: sweeps.SweepResult | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gdsim-sweep")
        self._future: Future | None = None
        self._poll = QTimer(self)
        self._poll.setInterval(50)
        self._poll.timeout.connect(self._check_done)
        self.compute_button.clicked.connect(lambda: self.computeRequested.emit())
        self.metric.currentTextChanged.connect(lambda _m: self._show())
        self.plot.scene().sigMouseClicked.connect(self._clicked)

    # -- inputs ------------------------------------------------------------------------------
    def set_runs(self, labels: list[str]) -> None:
        current = self.run_combo.currentIndex()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        self.run_combo.addItems(labels)
        self.run_combo.setCurrentIndex(min(max(current, 0), len(labels) - 1))
        self.run_combo.blockSignals(False)

    def axes(self) -> tuple[sweeps.Axis, sweeps.Axis] | None:
        """Both axes parsed, or None with the error shown in place."""
        out = []
        for edit in (self.x_edit, self.y_edit):
            try:
                out.append(sweeps.parse_axis(edit.text()))
                edit.setStyleSheet("")
            except ValueError as exc:
                edit.setStyleSheet(BAD_STYLE)
                self.message.setText(str(exc))
                return None
        return out[0], out[1]

    def start(self, job) -> bool:
        """Run `job()` (returns a SweepResult) in the background; False if one is running."""
        if self._future is not None:
            return False
        self.compute_button.setEnabled(False)
        self.message.setText("Computing…")
        self._future = self._pool.submit(job)
        self._poll.start()
        return True

    def busy(self) -> bool:
        return self._future is not None

    def shutdown(self) -> None:
        self._poll.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- internals ---------------------------------------------------------------------------
    def _check_done(self) -> None:
        future = self._future
        if future is None or not future.done():
            return
        self._poll.stop()
        self._future = None
        self.compute_button.setEnabled(True)
        try:
            self.result = future.result()
        except ValueError as exc:
            self.message.setText(str(exc))
            self.finished.emit(False)
            return
        r = self.result
        n_div = int(np.count_nonzero(r.diverged))
        self.message.setText(
            f"{r.x.name} x {r.y.name}: {r.shape[1]} x {r.shape[0]} cells, {r.steps} steps;"
            f" {n_div} diverged (red). Click a cell to run with its settings."
        )
        self._show()
        self.finished.emit(True)

    def _show(self) -> None:
        r = self.result
        if r is None:
            return
        xs, ys = _display(r.x), _display(r.y)
        dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1) or 1.0
        dy = (ys[-1] - ys[0]) / max(len(ys) - 1, 1) or 1.0
        self.image.setImage(metric_image(r, self.metric.currentText()), levels=(0, 255))
        self.image.setRect(QRectF(xs[0] - dx / 2, ys[0] - dy / 2, dx * len(xs), dy * len(ys)))
        self.plot.setLabel("bottom", f"log10 {r.x.name}" if r.x.log else r.x.name)
        self.plot.setLabel("left", f"log10 {r.y.name}" if r.y.log else r.y.name)
        bx, by = r.base_value(r.x), r.base_value(r.y)
        shown = bx is not None and by is not None
        shown = shown and (bx > 0 or not r.x.log) and (by > 0 or not r.y.log)
        if shown:  # the run's own setting
            px = math.log10(bx) if r.x.log else bx
            py = math.log10(by) if r.y.log else by
            self.cross.setData([px], [py])
        else:
            self.cross.setData([], [])
        self.plot.autoRange()

    def cell_at(self, px: float, py: float) -> tuple[int, int] | None:
        """The (ix, iy) of the cell under display coordinates (px, py), if any."""
        r = self.result
        if r is None:
            return None
        xs, ys = _display(r.x), _display(r.y)
        ix = int(np.argmin(np.abs(xs - px)))
        iy = int(np.argmin(np.abs(ys - py)))
        rect = self.image.mapRectToParent(self.image.boundingRect())
        if not rect.contains(QPointF(px, py)):
            return None
        return ix, iy

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.result is None:
            return
        p = self.plot.getPlotItem().vb.mapSceneToView(event.scenePos())
        cell = self.cell_at(p.x(), p.y())
        if cell is None:
            return
        r = self.result
        ix, iy = cell
        self.cellChosen.emit(r.x.name, float(r.x.values[ix]), r.y.name, float(r.y.values[iy]))
