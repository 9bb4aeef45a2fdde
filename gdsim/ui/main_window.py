"""The main window: docks, menus, toolbar and status bar; it wires panels, model, worker, views.

Data flow (DESIGN.md): a panel edit goes into the Document (with undo); the Document's signals
reach the worker as messages and the views as redraws. The worker's packets are kept as the
latest frame plus grown trails, and a 60 Hz timer draws them, so a fast simulation never floods
the event loop and a slow renderer never slows the engine.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import shiboken6
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QEvent,
    QIODevice,
    QObject,
    QSettings,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QBrush, QCloseEvent, QColor, QImage, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGraphicsView,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gdsim import __version__
from gdsim.engine import optimizers, theory
from gdsim.engine import sweep as sweeps
from gdsim.engine.simulation import RunSpec, Status, StopRules
from gdsim.export import figures
from gdsim.export.atomic import atomic_write
from gdsim.export.data import format_for, write_trajectories
from gdsim.resources import resource
from gdsim.scenario import Scenario, ScenarioError
from gdsim.ui import engine_process
from gdsim.ui.document import Document
from gdsim.ui.explaining import Explainer
from gdsim.ui.exporting import RECORD_FPS, Cancelled, FigureDialog, Recorder, with_progress
from gdsim.ui.panels.data import DataPanel, batch_run
from gdsim.ui.panels.playback import PlaybackPanel
from gdsim.ui.panels.runs import RunsPanel
from gdsim.ui.panels.surface import SurfacePanel
from gdsim.ui.panels.sweep import SweepPanel
from gdsim.ui.panels.theory import TheoryPanel, lr_warning
from gdsim.ui.trails import TrailStore
from gdsim.ui.views.contour_2d import Contour2DView
from gdsim.ui.views.loss_plot import LossPlot
from gdsim.ui.views.slice_1d import DIRECTIONS, SliceView
from gdsim.ui.views.surface_3d import Surface3DView
from gdsim.ui.worker import FramePacket, SimulationWorker

REDRAW_HZ = 60
MAX_RECENT = 8
EXPORT_SIZES = {
    "Window size": None,
    "2x window": 2,
    "1920 x 1080 (Full HD; plots: 1920 wide)": (1920, 1080),
    "3840 x 2160 (4K; plots: 3840 wide)": (3840, 2160),
}
HELP_TEXT = """<h3>gdsim: gradient descent, made visible</h3>
<p>Each ball is one run of an optimizer on the loss surface f(x, y). Its update is exactly
what <code>torch.optim</code> computes: for plain gradient descent
<b>W<sub>1</sub> = W<sub>0</sub> − lr · ∇f(W<sub>0</sub>)</b>.</p>
<ul>
<li><b>Space</b> play / pause, <b>→</b> one step, <b>R</b> reset</li>
<li><b>Ctrl+O</b> open, <b>Ctrl+S</b> save, <b>Ctrl+E</b> export image, <b>Ctrl+Z</b> undo</li>
<li>Contour map: click moves the selected run's start, drag a start marker,
<b>Shift+click</b> adds a ball.</li>
<li>3-D view: drag to orbit, wheel to zoom, middle-drag to pan.</li>
<li><b>Ctrl+Shift+F</b> export a figure or animation (as <code>gdsim render</code> draws it),
<b>Ctrl+Shift+R</b> record the 3-D view to GIF/MP4.</li>
<li>Sweep tab: the outcome map over two hyperparameters; click a cell to run with it.</li>
<li><b>E</b> explains the selected run's next step in stages on the contour map (Explain tab;
<b>.</b> / <b>,</b> next / previous stage, <b>Shift+E</b> applies it); View menu: downhill
gradient field, plain GD step −lr·∇f, per-axis effective step boxes of adaptive optimizers.</li>
<li>Slice tab: the surface cut through the selected ball, its tangent and slope, and where the
linear prediction f(p) + a·e fails. Theory tab: the lr ceiling 2/λ<sub>max</sub> and, on a
quadratic, the optimal lr and momentum (a button sets them).</li>
<li>NN surfaces: the ball is a model's two weights; the Data tab shows its fit. A run's
<b>mini-batch</b> size samples real batches; <b>Ctrl+M</b> shows the next batch's loss.</li>
</ul>
<p>Every change takes effect at once, also while the balls roll: a new learning rate keeps
the ball where it is and keeps its momentum; a new optimizer restarts its state.</p>
<p>Try: raise the learning rate on <i>bowl</i> until the ball jumps over the minimum; compare
plain GD and momentum in the <i>ravine</i>; watch plain GD stop in the shallow well of
<i>two-wells</i> while momentum rolls on.</p>"""


def default_scenario_path() -> Path:
    return Path(str(resource("scenarios", "default.json")))


class ReadoutTable(QTableWidget):
    """Per run: step, position, loss, gradient norm, learning rate and status."""

    COLUMNS = ("run", "step", "x", "y", "loss", "|∇f|", "lr", "status")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setObjectName("readouts")
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)

    def show_packet(
        self,
        labels: list[str],
        colors: list[str],
        packet: FramePacket,
        budget: int | None = None,
    ) -> None:
        n = len(labels)
        if self.rowCount() != n:
            self.setRowCount(n)
        # Each item change on its own makes the view re-measure every column (the header
        # sizes them to their contents): ~0.2 ms a cell, 5 ms a refresh with the GUI busy.
        # The changes go in with the model silent, then the view hears of them once.
        model = self.model()
        changed = False
        blocked = model.blockSignals(True)
        try:
            for i in range(n):
                changed |= self._show_row(i, labels[i], colors[i], packet, budget)
        finally:
            model.blockSignals(blocked)
        if changed and n:
            model.dataChanged.emit(model.index(0, 0), model.index(n - 1, self.columnCount() - 1))

    def _show_row(
        self, i: int, label: str, color: str, packet: FramePacket, budget: int | None
    ) -> bool:
        f = packet.frame
        status = f.status[i]
        if status is Status.DIVERGED:
            text = f"diverged at step {int(f.stopped_at[i])}"
        elif status is Status.CONVERGED:
            text = f"converged at step {int(f.stopped_at[i])}"
        elif not packet.playing and budget is not None and f.step[i] >= budget:
            text = "budget reached"
        else:
            text = "running" if packet.playing else ("paused" if f.step[i] else "ready")
        values = (
            label,
            str(int(f.step[i])),
            f"{f.positions[i, 0]:.6g}",
            f"{f.positions[i, 1]:.6g}",
            f"{f.losses[i]:.6g}",
            f"{math.hypot(*f.gradients[i]):.3g}",
            f"{f.lrs[i]:.3g}",
            text,
        )
        changed = False
        for j, value in enumerate(values):
            item = self.item(i, j)
            if item is None:
                item = QTableWidgetItem()
                self.setItem(i, j, item)
            if item.text() != value:
                item.setText(value)
                changed = True
        looks = [
            (0, Qt.ItemDataRole.ForegroundRole, QColor(Qt.GlobalColor.black)),
            (0, Qt.ItemDataRole.BackgroundRole, _qcolor(color)),
            (
                7,
                Qt.ItemDataRole.ForegroundRole,
                QColor(Qt.GlobalColor.red if status is Status.DIVERGED else Qt.GlobalColor.black),
            ),
        ]
        for j, role, c in looks:
            item = self.item(i, j)
            brush = item.data(role)
            if brush is None or brush.color() != c:
                item.setData(role, QBrush(c))
                changed = True
        return changed


class StatusLabel(QLabel):
    """A status-bar label whose size only ever grows.

    A label of free size asks the status bar to lay out again on every setText, and that
    layout repaints the bar in a pass of its own after the frame. With a GL view in the
    window every paint pass composites the whole window through OpenGL (10-20 ms under
    llvmpipe), so a step counter that changes each frame cost a second composite per frame.
    A fixed size, widened in coarse steps only when a longer text arrives, keeps it to one.
    """

    GROW_STEP = 24  # px: digits of a proportional font differ in width; do not chase them

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(0, self.sizeHint().height())

    def setText(self, text: str) -> None:
        if text == self.text():
            return
        super().setText(text)
        hint = self.sizeHint()
        if hint.width() > self.width() or hint.height() > self.height():
            step = self.GROW_STEP
            width = max(self.width(), -(-hint.width() // step) * step)
            self.setFixedSize(width, max(self.height(), hint.height()))


class PlayingRepaint(QObject):
    """While the balls roll, a pyqtgraph view is repainted by the redraw that changed it.

    A pyqtgraph scene hands its changes to its view through queued calls, and when two scenes
    change in one redraw the second one's changes reach the screen only after the first has
    been painted: the loss plot, changed together with the contour map, was painted in a pass
    of its own. With a GL view in the window every pass composites the whole window through
    OpenGL (~7 ms of llvmpipe plus the GUI thread's share), so 10 loss-plot updates a second
    cost 10 extra composites. While playing, the view's viewport therefore ignores its scene
    (QGraphicsView.NoViewportUpdate) and `changed()` repaints it in the same pass as the other
    views; mouse, wheel and key events on it still repaint at once. Paused, Qt's own minimal
    updates are back.
    """

    _TOUCH = frozenset(
        {
            QEvent.Type.MouseButtonPress,
            QEvent.Type.MouseButtonRelease,
            QEvent.Type.MouseButtonDblClick,
            QEvent.Type.MouseMove,
            QEvent.Type.Wheel,
            QEvent.Type.KeyPress,
            QEvent.Type.KeyRelease,
            QEvent.Type.Leave,
        }
    )

    def __init__(self, view: QGraphicsView) -> None:
        super().__init__(view)
        self._view = view
        self._active = False
        view.viewport().installEventFilter(self)
        view.installEventFilter(self)  # keys go to the view, not its viewport

    def set_active(self, active: bool) -> None:
        if active == self._active:
            return
        self._active = active
        mode = QGraphicsView.ViewportUpdateMode
        self._view.setViewportUpdateMode(
            mode.NoViewportUpdate if active else mode.MinimalViewportUpdate
        )
        self._view.viewport().update()

    def changed(self) -> None:
        if self._active:
            self._view.viewport().update()

    def eventFilter(self, watched, event) -> bool:
        if self._active and event.type() in self._TOUCH:
            self._view.viewport().update()  # painted after the event has been handled
        return False


def render_view(view: QWidget, width: int, height: int) -> QImage:
    """The view drawn for export.

    The 3-D view renders offscreen through GL at exactly width x height. A 2-D plot is
    re-drawn by pyqtgraph's exporter at `width` pixels wide (lines and text stay crisp at 4K
    instead of being upscaled pixels); its height follows the view's aspect ratio, because
    stretching a plot to another aspect would distort the contours.
    """
    if hasattr(view, "render_image"):
        return view.render_image(width, height)
    from pyqtgraph.exporters import ImageExporter

    exporter = ImageExporter(view.getPlotItem())
    exporter.parameters()["width"] = width
    image = exporter.export(toBytes=True)
    return image if isinstance(image, QImage) else QImage()


def _qcolor(hex_color: str):
    from PySide6.QtGui import QColor

    c = QColor(hex_color)
    c.setAlpha(110)
    return c


class SwarmDialog(QDialog):
    """N balls at random starts with one optimizer: a picture of the basins of attraction."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Swarm")
        form = QFormLayout(self)
        self.count = QSpinBox()
        self.count.setRange(2, 200)
        self.count.setValue(20)
        self.count.setToolTip("How many balls to drop")
        self.optimizer = QComboBox()
        for name in optimizers.names():
            self.optimizer.addItem(optimizers.info(name).display_name, name)
        self.optimizer.setCurrentIndex(self.optimizer.findData("sgd"))
        form.addRow("balls", self.count)
        form.addRow("optimizer", self.optimizer)
        form.addRow(QLabel("Starts are drawn uniformly in the view box (seeded)."))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


#: For a function of x only, the slice shows each ball's last this many iterates on the curve.
ONE_D_ITERATES = 40


class MainWindow(QMainWindow):
    #: Emitted after each redraw with the step shown (tests and benchmarks wait on it).
    redrawn = Signal()
    #: Emitted when a trajectory export finished: (path, succeeded).
    exportFinished = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        engine_process.prestart()  # the engine child starts up while the window is built
        super().__init__(parent)
        self.setWindowTitle("gdsim")
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self.doc = Document(self)
        self.trails = TrailStore()
        self.packet: FramePacket | None = None
        self._drawn_packet: FramePacket | None = None
        self._selected: int | None = None
        self._known_diverged: set[int] = set()
        self._frames_drawn = 0
        self._fps_t0 = time.perf_counter()
        self._fps = 0.0
        self._slow_t = 0.0
        self._snapshot_token = 0
        self._pending: dict[int, object] = {}
        self._recorder: Recorder | None = None
        self._display = {"resolution": 160, "cmap": "viridis", "log": False}
        self._surface_cache: tuple | None = None

        # Views
        self.view3d = Surface3DView()
        self.contour = Contour2DView()
        self.loss_plot = LossPlot()
        self._loss_repaint = PlayingRepaint(self.loss_plot)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.view3d)
        splitter.addWidget(self.contour)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.setCentralWidget(splitter)
        self._splitter = splitter

        # Panels in docks
        self.surface_panel = SurfacePanel()
        self.runs_panel = RunsPanel()
        self.playback = PlaybackPanel()
        self.readouts = ReadoutTable()
        self.sweep_panel = SweepPanel()
        self.docks: dict[str, QDockWidget] = {}
        self._add_dock("Surface", self.surface_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._add_dock("Playback", self.playback, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._add_dock("Runs", self.runs_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._add_dock("Loss", self.loss_plot, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Readouts", self.readouts, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Sweep", self.sweep_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.docks["Runs"], self.docks["Sweep"])
        self.docks["Runs"].raise_()
        self.runs_panel.setMinimumWidth(330)
        self.surface_panel.setMinimumWidth(280)
        self._build_slice_and_theory()

        self.status_step = StatusLabel()
        self.status_rate = StatusLabel()
        self.statusBar().addPermanentWidget(self.status_step)
        self.statusBar().addPermanentWidget(self.status_rate)

        self._build_actions()
        self._build_menus()
        self._build_data()

        # Worker
        self.worker = SimulationWorker()
        self.worker.packetReady.connect(self._on_packet)
        self.worker.snapshotReady.connect(self._on_snapshot)
        self.worker.failed.connect(lambda m: self.statusBar().showMessage(f"Engine: {m}", 8000))
        self.worker.restarted.connect(self._send_all)
        self.worker.start()

        # Wiring: panels -> document
        self.runs_panel.edited.connect(self._on_run_edited)
        self.runs_panel.addRequested.connect(self.add_ball)
        self.runs_panel.swarmRequested.connect(self.swarm)
        self.runs_panel.removeRequested.connect(self.doc.remove_run)
        self.runs_panel.duplicateRequested.connect(self.doc.duplicate_run)
        self.runs_panel.selected.connect(self._select)
        self.surface_panel.surfaceChosen.connect(
            lambda n: self._try(self.doc.set_surface, {"name": n})
        )
        self.surface_panel.formulaApplied.connect(self._apply_formula)
        self.surface_panel.paramsChanged.connect(self._surface_params)
        self.surface_panel.boxChanged.connect(lambda b: self._try(self.doc.set_box, b))
        self.surface_panel.boxResetRequested.connect(
            lambda: self._try(self.doc.set_box, self.doc.surface.box)
        )
        self.surface_panel.displayChanged.connect(self._display_changed)
        self.playback.play_button.toggled.connect(self.set_playing)
        self.playback.step_button.clicked.connect(lambda: self.step_once())
        self.playback.reset_button.clicked.connect(lambda: self.reset())
        self.playback.speedChanged.connect(lambda v: self.worker.post("speed", v))
        self.playback.budgetChanged.connect(lambda v: self._try(self.doc.set_steps, v))
        self.playback.stopRulesChanged.connect(
            lambda r: self._try(self.doc.set_stop, r["grad_tol"], r["loss_tol"])
        )
        self.contour.startMoved.connect(self._start_moved)
        self.contour.addBallRequested.connect(self._add_ball_at)
        self.readouts.itemSelectionChanged.connect(self._readout_selected)
        self.sweep_panel.computeRequested.connect(self.compute_sweep)
        self.sweep_panel.cellChosen.connect(self._sweep_cell_chosen)

        # Wiring: document -> worker, panels, views
        self.doc.loaded.connect(self._on_loaded)
        self.doc.surfaceChanged.connect(self._on_surface_changed)
        self.doc.runsChanged.connect(self._on_runs_changed)
        self.doc.runEdited.connect(self._on_run_changed)
        self.doc.settingsChanged.connect(self._on_settings_changed)
        self.doc.undo_stack.cleanChanged.connect(self._on_clean_changed)

        self._build_explain()

        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / REDRAW_HZ))
        self._timer.timeout.connect(self._redraw)
        self._timer.start()
        self._restore_settings()

    # ------------------------------------------------------------------ set-up
    def _add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower()}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[title] = dock

    def _build_explain(self) -> None:
        """Seeing the mathematics on the map: the explainer dock and the map-only overlays."""
        self.explainer = Explainer(self)
        self._add_dock("Explain", self.explainer.panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.docks["Sweep"], self.docks["Explain"])
        self.docks["Runs"].raise_()
        self.explainer.add_dock_toggle(self.docks["Explain"])

    def _action(self, text: str, slot, shortcut=None, tip: str = "", checkable=False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.act_new = a(
            "&New (default scenario)", lambda: self.new_scenario(), QKeySequence.StandardKey.New
        )
        self.act_open = a(
            "&Open scenario…",
            lambda: self.open_dialog(),
            QKeySequence.StandardKey.Open,
            "Open a scenario file (.json)",
        )
        self.act_save = a(
            "&Save scenario",
            lambda: self.save(),
            QKeySequence.StandardKey.Save,
            "Save the experiment as a scenario file",
        )
        self.act_save_as = a(
            "Save scenario &as…", lambda: self.save_as(), QKeySequence.StandardKey.SaveAs
        )
        self.act_export_3d = a(
            "Export 3-D view image…",
            lambda: self.export_image("3d"),
            "Ctrl+E",
            "Save the 3-D view as PNG at a chosen size",
        )
        self.act_export_contour = a(
            "Export contour image…", lambda: self.export_image("contour"), "Ctrl+Shift+E"
        )
        self.act_export_figure = a(
            "Export figure or animation…",
            lambda: self.export_figure(),
            "Ctrl+Shift+F",
            "PNG/SVG/PDF or GIF/MP4 drawn as `gdsim render` draws it",
        )
        self.act_record = a(
            "Record 3-D view…",
            lambda checked: self.toggle_recording(checked),
            "Ctrl+Shift+R",
            "Record what the 3-D view shows to GIF/MP4; choose again to stop and save",
            checkable=True,
        )
        self.act_export_csv = a(
            "Export trajectories (CSV/JSON)…", lambda: self.export_trajectories()
        )
        self.act_quit = a("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_play = a(
            "&Play / pause",
            lambda: self.set_playing(not self._playing()),
            Qt.Key.Key_Space,
            "Play or pause (Space)",
        )
        self.act_step = a("&Step", lambda: self.step_once(), Qt.Key.Key_Right, "One step (→)")
        self.act_reset = a(
            "&Reset", lambda: self.reset(), Qt.Key.Key_R, "Every ball back to its start (R)"
        )
        self.act_add = a("&Add ball", lambda: self.add_ball(), "Ctrl+B", "Add a ball")
        self.act_swarm = a(
            "S&warm…", lambda: self.swarm(), None, "Drop many balls at random starts"
        )
        self.act_undo = self.doc.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence.StandardKey.Undo)
        self.act_redo = self.doc.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcut(QKeySequence.StandardKey.Redo)
        self.addAction(self.act_undo)
        self.addAction(self.act_redo)
        self.act_help = a(
            "gdsim &help", lambda: self.show_help(), QKeySequence.StandardKey.HelpContents
        )
        self.act_about = a("&About gdsim", lambda: self.show_about())
        self.act_reset_camera = a("Reset camera", lambda: self.view3d.reset_camera(), "Home")
        self.overlay_actions = {}
        for kind, label in (
            ("gradient", "Gradient arrows"),
            ("velocity", "Velocity arrows"),
            ("step", "Step arrows"),
        ):
            act = a(
                label,
                lambda checked, k=kind: self._toggle_overlay(k, checked),
                None,
                f"Show the {kind} at each ball",
                checkable=True,
            )
            self.overlay_actions[kind] = act
        self.act_log_loss = a(
            "Log loss axis",
            lambda checked: self.loss_plot.set_log(checked),
            None,
            "Loss axis on a log scale",
            checkable=True,
        )
        self.act_log_loss.setChecked(True)
        self.act_contour_lines = a(
            "Contour lines on 3-D surface",
            lambda c: self.view3d.set_contours_visible(c),
            None,
            checkable=True,
        )
        self.act_contour_lines.setChecked(True)
        self.act_wireframe = a(
            "Wireframe", lambda c: self.view3d.set_wireframe(c), None, checkable=True
        )
        # The play button mirrors the action; Space must not also "click" a focused button.
        for button in (
            self.playback.play_button,
            self.playback.step_button,
            self.playback.reset_button,
        ):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.playback.play_button.setToolTip("Play or pause (Space)")
        self.playback.step_button.setToolTip("One step of every running ball (→)")
        self.playback.reset_button.setToolTip("Every ball back to its start (R)")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_new, self.act_open])
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addActions([self.act_save, self.act_save_as])
        file_menu.addSeparator()
        file_menu.addActions(
            [
                self.act_export_3d,
                self.act_export_contour,
                self.act_export_figure,
                self.act_record,
                self.act_export_csv,
            ]
        )
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit = bar.addMenu("&Edit")
        edit.addActions([self.act_undo, self.act_redo])
        edit.addSeparator()
        edit.addActions([self.act_add, self.act_swarm])
        sim = bar.addMenu("&Simulation")
        sim.addActions([self.act_play, self.act_step, self.act_reset])
        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        view.addActions(list(self.overlay_actions.values()))
        view.addActions([self.act_log_loss, self.act_contour_lines, self.act_wireframe])
        view.addSeparator()
        camera = view.addMenu("Camera")
        camera.addAction(self.act_reset_camera)
        for preset in ("default", "top", "side-x", "side-y"):
            camera.addAction(
                self._action(preset, lambda _c=False, p=preset: self.view3d.set_camera_preset(p))
            )
        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.act_help, self.act_about])

        tools = self.addToolBar("Main")
        tools.setObjectName("toolbar_main")
        tools.addActions([self.act_open, self.act_save])
        tools.addSeparator()
        tools.addActions([self.act_play, self.act_step, self.act_reset])
        tools.addSeparator()
        tools.addActions([self.act_add, self.act_undo, self.act_redo])
        tools.addSeparator()
        tools.addAction(self.act_export_3d)

    def _build_data(self) -> None:
        """The Data dock (an NN surface's data and every ball's fit), the runs' mini-batch
        controls, and the mini-batch contour overlay in the View menu."""
        self.data_panel = DataPanel()
        self._data_repaint = PlayingRepaint(self.data_panel.plot)
        self._add_dock("Data", self.data_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        # tabbed with Readouts in showEvent: see _tab_bottom_docks
        self.act_batch_contours = self._action(
            "Mini-batch contours",
            lambda _checked: setattr(self, "_drawn_packet", None),
            "Ctrl+M",
            "Dashed over the contour map: the loss of the mini-batch the selected run's next"
            " step descends (NN surfaces, runs with a batch size)",
            checkable=True,
        )
        view = next(a.menu() for a in self.menuBar().actions() if a.text() == "&View")
        first_separator = next(a for a in view.actions() if a.isSeparator())
        view.insertAction(first_separator, self.docks["Data"].toggleViewAction())
        view.insertAction(self.act_log_loss, self.act_batch_contours)  # after the overlays
        self._batch_grid: tuple | None = None

        def surface_changed() -> None:
            data = self.doc.surface.data
            self.runs_panel.set_data_size(None if data is None else data.m)
            self.data_panel.show_surface(self.doc.surface)
            if data is not None:
                self.docks["Data"].raise_()

        self.doc.surfaceChanged.connect(surface_changed)
        self.doc.loaded.connect(surface_changed)

    def _draw_data(self, f) -> None:
        """The data panel's fits and, when asked, the selected run's mini-batch contours."""
        d = self.doc
        colors = [r.color or "#888888" for r in d.runs]
        visible = [r.visible for r in d.runs]
        batches = f.batches or (None,) * len(d.runs)
        selected = self._selected_index()
        self.data_panel.update_runs(d.surface, f.positions, colors, visible, batches, selected)
        i = batch_run(selected, visible, batches)
        if not self.act_batch_contours.isChecked() or d.surface.data is None or i is None:
            self.contour.set_batch_contours(None)
            return
        key = (id(d.surface), d.box, batches[i].tobytes())
        if self._batch_grid is None or self._batch_grid[0] != key:
            (x0, x1), (y0, y1) = d.box
            x, y = np.linspace(x0, x1, 72), np.linspace(y0, y1, 72)
            grid = np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1)
            self._batch_grid = (key, x, y, d.surface.batch_value(grid, batches[i]))
        _, x, y, z = self._batch_grid
        self.contour.set_batch_contours(x, y, z, color=colors[i], log=bool(self._display["log"]))

    # ------------------------------------------------------------------ scenarios
    def open_initial(self, path: Path | None) -> None:
        """The scenario given, else the file open when the app last closed, else the default.

        Only a saved file is reopened: changes the person chose to discard on closing stay
        discarded, and an untitled experiment was offered for saving before the window closed.
        """
        if path is not None and self.open_path(path):
            return
        last = str(QSettings().value("scenario/last_path", "") or "")
        if path is None and last:
            if Path(last).is_file() and self.open_path(Path(last), remember=False):
                return
            self.statusBar().showMessage(f"Last session's file is gone: {last}", 8000)
        self.open_path(default_scenario_path(), remember=False)
        self.doc.path = None
        self._update_title()

    def open_path(self, path: Path, *, remember: bool = True) -> bool:
        try:
            scenario = Scenario.load(path)
        except (ScenarioError, OSError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot open scenario", f"{path}:\n{exc}")
            return False
        self.doc.load_scenario(scenario, Path(path))
        if remember:
            self._remember_recent(Path(path))
        self.statusBar().showMessage(f"Opened {path}", 4000)
        return True

    def new_scenario(self) -> None:
        if self._confirm_discard():
            self.open_path(default_scenario_path(), remember=False)
            self.doc.path = None
            self._update_title()

    def open_dialog(self) -> None:
        if not self._confirm_discard():
            return
        start = str(self.doc.path.parent) if self.doc.path else str(Path.home())
        name, _ = QFileDialog.getOpenFileName(self, "Open scenario", start, "Scenarios (*.json)")
        if name:
            self.open_path(Path(name))

    def save(self) -> bool:
        if self.doc.path is None or not self._is_user_file(self.doc.path):
            return self.save_as()
        return self._save_to(self.doc.path)

    def save_as(self) -> bool:
        start = self.doc.path or Path.home() / "scenario.json"
        path = self._ask_save_path("Save scenario", start, "Scenarios (*.json)", ".json")
        return path is not None and self._save_to(path)

    def _ask_save_path(
        self, title: str, suggested: Path, filters: str, suffix: str | None
    ) -> Path | None:
        """A file name from the save dialog, with `suffix` added when the person left it off."""
        name, _ = QFileDialog.getSaveFileName(self, title, str(suggested), filters)
        if not name:
            return None
        path = Path(name)
        if suffix and path.suffix.lower() != suffix:
            path = path.with_suffix(suffix)
        return path

    def _save_to(self, path: Path) -> bool:
        try:
            self.doc.to_scenario().save(path)
        except (OSError, ScenarioError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot save scenario", f"{path}:\n{exc}")
            return False
        self.doc.mark_saved(path)
        self._remember_recent(path)
        self.statusBar().showMessage(f"Saved {path}", 4000)
        self._update_title()
        return True

    @staticmethod
    def _is_user_file(path: Path) -> bool:
        return path.resolve() != default_scenario_path().resolve()

    def _confirm_discard(self) -> bool:
        """True when it is fine to drop the current experiment (saved, discarded, or unchanged)."""
        if not self.doc.is_dirty():
            return True
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            "The experiment has unsaved changes. Save them first?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def _remember_recent(self, path: Path) -> None:
        settings = QSettings()
        recent = [str(path.resolve())] + [
            p for p in (settings.value("recent", []) or []) if p != str(path.resolve())
        ]
        settings.setValue("recent", recent[:MAX_RECENT])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        recent = QSettings().value("recent", []) or []
        if isinstance(recent, str):
            recent = [recent]
        for p in recent:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(
                lambda _c=False, p=p: self._confirm_discard() and self.open_path(Path(p))
            )
        self.recent_menu.setEnabled(bool(recent))

    # ------------------------------------------------------------------ edits
    def _try(self, fn, *args) -> bool:
        try:
            fn(*args)
        except ValueError as exc:
            self.statusBar().showMessage(str(exc), 8000)
            QMessageBox.warning(self, "Not applied", str(exc))
            return False
        return True

    def _on_run_edited(self, run_id: int, changes: dict) -> None:
        merge = "params" in changes and "optimizer" not in changes
        ok = self._try(
            lambda: self.doc.edit_run(run_id, changes, merge_key="drag" if merge else "")
        )
        if not ok:  # put the panel back to the model's value
            self.runs_panel.set_runs(self.doc.ids, self.doc.runs)
        elif "optimizer" in changes:
            label = self.doc.run(run_id).label
            message = (
                f"{label}: optimizer changed; its state (momentum, moments, step count)"
                " restarts where the ball is"
            )
            self.statusBar().showMessage(message, 6000)
            self.runs_panel.groups[run_id].show_notice(
                "Optimizer changed: its state restarted where the ball is."
            )

    def _apply_formula(self, text: str) -> None:
        try:
            self.doc.set_surface({"formula": text}, self.doc.box)
        except ValueError as exc:
            self.surface_panel.show_formula_error(str(exc))

    def _surface_params(self, params: dict) -> None:
        spec = dict(self.doc.surface_spec)
        spec["params"] = params
        self._try(self.doc.set_surface, spec, self.doc.box)

    def _display_changed(self, options: dict) -> None:
        self._display = dict(options)
        QSettings().setValue("view/display", json.dumps(self._display))
        self._draw_surface()

    def _start_moved(self, index: int, x: float, y: float) -> None:
        if 0 <= index < len(self.doc.ids):
            self._try(lambda: self.doc.edit_run(self.doc.ids[index], {"start": (x, y)}))

    def _add_ball_at(self, x: float, y: float) -> None:
        self.add_ball((x, y))

    def add_ball(self, start: tuple[float, float] | None = None) -> None:
        template = self.doc.run(self._selected) if self._selected in self.doc.ids else None
        if start is None:
            starts = self.doc.surface.starts
            start = tuple(starts[len(self.doc.runs) % len(starts)]) if len(starts) else (0.0, 0.0)
        if template is not None:
            spec = replace(
                template.copy(),
                label=f"{template.label} {len(self.doc.runs) + 1}",
                start=tuple(start),
                color=None,
            )
        else:
            spec = RunSpec(
                label=f"GD {len(self.doc.runs) + 1}",
                optimizer="sgd",
                params={"lr": 0.01},
                start=tuple(start),
            )
        self._try(self.doc.add_run, spec)

    def swarm(self) -> None:
        dialog = SwarmDialog(self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        name = dialog.optimizer.currentData()
        template = next((r for r in self.doc.runs if r.optimizer == name), None)
        params = dict(template.params) if template else {"lr": 0.01}
        rng = np.random.default_rng([self.doc.seed, len(self.doc.runs)])
        (x0, x1), (y0, y1) = self.doc.box
        xy = rng.uniform([x0, y0], [x1, y1], size=(dialog.count.value(), 2))
        display = optimizers.info(name).display_name
        specs = [
            RunSpec(
                label=f"{display} #{k + 1}",
                optimizer=name,
                params=params,
                start=(float(p[0]), float(p[1])),
            )
            for k, p in enumerate(xy)
        ]
        self._try(self.doc.add_runs, specs, f"Swarm of {len(specs)}")

    # ------------------------------------------------------------------ sweep
    def compute_sweep(self) -> bool:
        """Step the sweep panel's grid for its run, in the background."""
        axes = self.sweep_panel.axes()
        index = self.sweep_panel.run_combo.currentIndex()
        if axes is None or not 0 <= index < len(self.doc.runs):
            return False
        run, surface = self.doc.runs[index].copy(), self.doc.surface
        steps, seed = self.sweep_panel.steps.value(), self.doc.seed

        def job():
            return sweeps.sweep(
                surface,
                run.optimizer,
                run.params,
                run.start,
                *axes,
                steps=steps,
                schedule=run.schedule,
                noise=run.noise,
                batch_size=run.batch_size,
                seed=seed,
                stream=index,
            )

        self._sweep_run_id = self.doc.ids[index]
        return self.sweep_panel.start(job)

    def _sweep_cell_chosen(self, x_name: str, x: float, y_name: str, y: float) -> None:
        """Set the swept run's hyperparameters to the clicked cell and play it from its start."""
        run_id = getattr(self, "_sweep_run_id", None)
        if run_id not in self.doc.ids:
            return
        params = dict(self.doc.run(run_id).params)
        info = optimizers.info(self.doc.run(run_id).optimizer)
        betas = next((p.default for p in info.params if p.name == "betas"), (0.9, 0.999))
        for name, value in ((x_name, x), (y_name, y)):
            if name in ("beta1", "beta2"):
                pair = list(params.get("betas", betas))
                pair[0 if name == "beta1" else 1] = value
                params["betas"] = tuple(pair)
            else:
                params[name] = value
        if not self._try(lambda: self.doc.edit_run(run_id, {"params": params})):
            return
        self.worker.post("reset_run", run_id)
        self.set_playing(True)
        self.statusBar().showMessage(
            f"{self.doc.run(run_id).label}: {x_name} = {x:.4g}, {y_name} = {y:.4g}; playing", 5000
        )

    # ------------------------------------------------------------------ playback
    def _playing(self) -> bool:
        return self.playback.play_button.isChecked()

    def set_playing(self, playing: bool) -> None:
        self.playback.set_playing(playing)
        self.worker.post("play", playing)

    def step_once(self) -> None:
        self.set_playing(False)
        self.worker.post("step", 1)

    def reset(self) -> None:
        self.set_playing(False)
        self._known_diverged.clear()
        self.worker.post("reset")

    # ------------------------------------------------------------------ document -> others
    def _send_all(self) -> None:
        d = self.doc
        self.worker.post("speed", self.playback.current_speed())
        stop = StopRules(None, d.stop.grad_tol, d.stop.loss_tol)
        self.worker.load(d.surface, d.ids, d.runs, d.steps, stop, d.seed)
        self._worker_ids = list(d.ids)

    def _on_loaded(self) -> None:
        self._known_diverged.clear()
        self.set_playing(False)
        self._show_surface()
        self._on_runs_structure()
        self._on_settings_changed(send=False)
        self._send_all()
        self._update_title()
        self.view3d.reset_camera()

    def _on_surface_changed(self) -> None:
        self._known_diverged.clear()
        self._show_surface()
        self.worker.post("surface", self.doc.surface)

    def _show_surface(self) -> None:
        d = self.doc
        custom = "formula" in d.surface_spec
        self.surface_panel.show_surface(d.surface, d.box, custom=custom)
        # Log colours follow the surface (Goldstein-Price needs them, the bowl does not); the
        # check box still overrides it until the next surface.
        self._display["log"] = bool(d.surface.log_scale)
        self.surface_panel.show_display(self._display)
        self._draw_surface()
        self._slice_and_theory_surface()

    def _draw_surface(self) -> None:
        d = self.doc
        n = int(self._display["resolution"])
        key = (id(d.surface), d.box, n)
        if self._surface_cache is None or self._surface_cache[0] != key:
            with np.errstate(all="ignore"):
                x, y, z = d.surface.grid(n, n, d.box)
            self._surface_cache = (key, x, y, z)
        _, x, y, z = self._surface_cache
        log, cmap = bool(self._display["log"]), self._display["cmap"]
        self.view3d.set_surface(
            x, y, z, log=log, cmap=cmap, wireframe=self.act_wireframe.isChecked()
        )
        self.contour.set_surface(x, y, z, log=log, cmap=cmap)
        minima = np.asarray(d.surface.minima, dtype=float).reshape(-1, 2)
        self.view3d.set_minima(minima, d.surface.value(minima) if len(minima) else np.empty(0))
        self.contour.set_minima(minima)
        values = np.asarray(getattr(d.surface, "minima_values", []), dtype=float)
        # With the known minimum the loss plot shows f - f* on a log axis: the distance left.
        self.loss_plot.set_reference(float(values.min()) if values.size else None)
        local = np.asarray(
            getattr(d.surface, "local_minima", np.empty((0, 2))), dtype=float
        ).reshape(-1, 2)
        self.view3d.set_local_minima(local, d.surface.value(local) if len(local) else np.empty(0))
        self.contour.set_local_minima(local)
        self._drawn_packet = None

    def _on_runs_structure(self) -> None:
        d = self.doc
        colors = [r.color or "#888888" for r in d.runs]
        self.runs_panel.set_runs(d.ids, d.runs)
        self.view3d.set_runs(colors)
        self.contour.set_runs(colors)
        self.contour.set_starts(np.array([r.start for r in d.runs], dtype=float).reshape(-1, 2))
        self.loss_plot.set_runs([r.label for r in d.runs], colors)
        self.sweep_panel.set_runs([r.label for r in d.runs])
        self._drawn_packet = None

    def _on_runs_changed(self) -> None:
        """Runs added or removed: tell the worker the difference, keep the others rolling."""
        self._on_runs_structure()
        sent = list(self._worker_ids)
        for run_id in sent:
            if run_id not in self.doc.ids:
                self.worker.post("remove_run", run_id)
        for run_id, spec in zip(self.doc.ids, self.doc.runs, strict=True):
            if run_id not in sent:
                self.worker.post("add_run", run_id, spec.copy())
        self._worker_ids = list(self.doc.ids)

    @property
    def _worker_ids(self) -> list[int]:
        return getattr(self, "_wids", [])

    @_worker_ids.setter
    def _worker_ids(self, ids: list[int]) -> None:
        self._wids = list(ids)

    def _on_run_changed(self, run_id: int) -> None:
        spec = self.doc.run(run_id)
        self.runs_panel.set_runs(self.doc.ids, self.doc.runs)
        colors = [r.color or "#888888" for r in self.doc.runs]
        self.view3d.set_runs(colors)
        self.contour.set_runs(colors)
        self.contour.set_starts(
            np.array([r.start for r in self.doc.runs], dtype=float).reshape(-1, 2)
        )
        self.loss_plot.set_runs([r.label for r in self.doc.runs], colors)
        self.worker.post("run", run_id, spec.copy())
        self._drawn_packet = None

    def _on_settings_changed(self, send: bool = True) -> None:
        d = self.doc
        self.playback.show_settings(d.steps, d.stop.grad_tol, d.stop.loss_tol)
        if send:
            self.worker.post("budget", d.steps)
            self.worker.post("stop_rules", StopRules(None, d.stop.grad_tol, d.stop.loss_tol))

    def _on_clean_changed(self, clean: bool) -> None:
        # The stack also says so from its destructor, when the window may be half gone.
        if shiboken6.isValid(self) and shiboken6.isValid(self.doc):
            self._update_title(dirty=not clean)

    def _update_title(self, dirty: bool | None = None) -> None:
        dirty = self.doc.is_dirty() if dirty is None else dirty
        name = self.doc.path.name if self.doc.path else "untitled"
        self.setWindowTitle(f"{name}[*] — gdsim")
        self.setWindowModified(dirty)

    # ------------------------------------------------------------------ packets and drawing
    def _on_packet(self, packet: FramePacket) -> None:
        self.trails.take(packet.generation, packet.ids, packet.trails)
        self.packet = packet
        if not packet.playing and self._playing():
            self.playback.set_playing(False)  # every run stopped: the worker paused itself

    def _redraw(self) -> None:
        packet = self.packet
        if packet is None or packet is self._drawn_packet:
            return
        d = self.doc
        if tuple(d.ids) != packet.ids:
            return  # the worker has not caught up with an add/remove yet
        f = packet.frame
        n = len(d.ids)
        visible = [r.visible for r in d.runs]
        diverged = [s is Status.DIVERGED for s in f.status]
        trails2d, trails3d, losses = [], [], []
        for run_id in d.ids:
            t = self.trails.get(run_id)
            trails2d.append(t.positions)
            trails3d.append(t.points)
            losses.append(t.losses)
        self.view3d.update_runs(
            f.positions,
            f.losses,
            trails3d,
            visible,
            diverged,
            gradients=f.gradients,
            velocities=f.velocities,
            steps=f.deltas,
        )
        self.contour.update_runs(
            f.positions,
            trails2d,
            visible,
            diverged,
            self._selected_index(),
            gradients=f.gradients,
            velocities=f.velocities,
            steps=f.deltas,
            gd_steps=packet.gd_steps,
            step_boxes=self.explainer.step_boxes(packet),
        )
        self.explainer.on_drawn(packet)
        # The loss curves and the numbers change little between frames but cost as much as
        # the 3-D view to draw: 10 Hz while playing, every frame otherwise.
        now = time.perf_counter()
        slow_due = not packet.playing or now - self._slow_t >= 0.1
        self._data_repaint.set_active(packet.playing)
        if slow_due:
            self._draw_data(f)
            self._data_repaint.changed()
        self._loss_repaint.set_active(packet.playing)
        if slow_due:
            self._slow_t = now
            self.loss_plot.update_runs(
                losses, visible, diverged, step=int(f.step.max()) if n else 0
            )
            self._loss_repaint.changed()
        if slow_due:
            self.readouts.show_packet(
                [r.label for r in d.runs], [r.color or "#888" for r in d.runs], packet, d.steps
            )
        self._draw_slice_and_theory(packet, slow_due)
        for i, run_id in enumerate(d.ids):
            if diverged[i] and run_id not in self._known_diverged:
                self._known_diverged.add(run_id)
                self.statusBar().showMessage(
                    f"{d.runs[i].label} diverged at step {int(f.stopped_at[i])}: the learning"
                    " rate is too high for the curvature here",
                    8000,
                )
        self.status_step.setText(f"step {int(f.step.max()) if n else 0}")
        self._frames_drawn += 1
        now = time.perf_counter()
        if now - self._fps_t0 >= 1.0:
            self._fps = self._frames_drawn / (now - self._fps_t0)
            self._frames_drawn, self._fps_t0 = 0, now
        self.status_rate.setText(
            f"{packet.steps_per_second:,.0f} steps/s · {self._fps:.0f} fps"
            if packet.playing
            else ""
        )
        self._drawn_packet = packet
        if self._recorder is not None:
            self._recorder.capture()
            if self._recorder.full:
                self.statusBar().showMessage("Recording reached its length limit", 5000)
                self.toggle_recording(False)
        self.redrawn.emit()

    def _selected_index(self) -> int | None:
        return self.doc.ids.index(self._selected) if self._selected in self.doc.ids else None

    def _select(self, run_id: int) -> None:
        self._selected = run_id
        self.runs_panel.ensure_visible(run_id)
        self._drawn_packet = None

    def _readout_selected(self) -> None:
        rows = {i.row() for i in self.readouts.selectedIndexes()}
        if rows:
            row = min(rows)
            if row < len(self.doc.ids):
                self._select(self.doc.ids[row])

    def _toggle_overlay(self, kind: str, on: bool) -> None:
        self.view3d.set_overlay_visible(kind, on)
        self.contour.set_overlay_visible(kind, on)
        self._drawn_packet = None

    # ------------------------------------------------------------------ slice and theory
    def _build_slice_and_theory(self) -> None:
        """The Slice dock (the surface cut through the selected ball, with its tangent) and
        the Theory dock. For a function of x only the slice is the function itself, so it
        then replaces the 3-D view and contour map as the central view (see _set_one_d)."""
        self.slice_view = SliceView()
        self._batch_loss_cache: tuple | None = None  # (key, surface, batch loss function)
        self._slice_repaint = PlayingRepaint(self.slice_view.plot)
        self.theory_panel = TheoryPanel()
        self._add_dock("Slice", self.slice_view, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._add_dock("Theory", self.theory_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        # Side by side, not tabbed: the slice is worth seeing while the balls roll, and a
        # second tab group in one window makes Qt 6.11 leave a stale copy of its tab bar
        # drawn over the neighbouring dock (tests/ui/test_layout.py).
        self.splitDockWidget(self.docks["Readouts"], self.docks["Slice"], Qt.Orientation.Horizontal)
        self.tabifyDockWidget(self.docks["Runs"], self.docks["Theory"])
        self.docks["Runs"].raise_()
        for title in ("Slice", "Theory"):  # shown again: draw the current frame into it
            self.docks[title].visibilityChanged.connect(self._invalidate_drawn)
        self.theory_panel.useOptimalRequested.connect(self.use_optimal_settings)
        self.doc.runEdited.connect(self._mark_settings_changed)
        self._central = QStackedWidget()
        self._central.addWidget(self.takeCentralWidget())
        self._one_d_page = QWidget()
        QVBoxLayout(self._one_d_page).setContentsMargins(0, 0, 0, 0)
        self._central.addWidget(self._one_d_page)
        self.setCentralWidget(self._central)
        self._slice_moved = QLabel("f depends on x only: the slice is the main view now.")
        self._slice_moved.setObjectName("slice_moved")
        self._slice_moved.setWordWrap(True)
        self._slice_moved.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._quadratic: tuple = (None, None, None)  # (surface, constant Hessian, f*)
        self._theory_since: dict[int, tuple] = {}  # run id -> (settings, first step)
        self.status_ceiling = QLabel()
        self.status_ceiling.setToolTip(
            "2/λmax of the Hessian at the selected ball: plain GD with a larger lr overshoots"
        )
        self.statusBar().addPermanentWidget(self.status_ceiling)

    def _invalidate_drawn(self, *_: object) -> None:
        self._drawn_packet = None

    def _slice_and_theory_surface(self) -> None:
        d = self.doc
        one_d = bool(getattr(d.surface, "one_d", False))
        self.slice_view.set_function(d.surface.value, d.box, one_d=one_d)
        self._set_one_d(one_d)

    def _set_one_d(self, one_d: bool) -> None:
        """f(x) only: the slice (the curve f(x) with ball and tangent) is the central view.

        The 3-D view of f(x) is the same curve dragged along a y that means nothing, and the
        contour map is a row of stripes; the curve itself is the textbook picture.
        """
        dock = self.docks["Slice"]
        # The dock keeps its place and state (a saved layout stays right); meanwhile it says
        # where the slice went.
        if one_d and self._central.currentIndex() == 0:
            self._one_d_page.layout().addWidget(self.slice_view)
            self.slice_view.show()
            dock.setWidget(self._slice_moved)
            self._slice_moved.show()
            self._central.setCurrentIndex(1)
        elif not one_d and self._central.currentIndex() == 1:
            dock.setWidget(self.slice_view)
            self.slice_view.show()
            self._central.setCurrentIndex(0)
        self._drawn_packet = None

    def _theory_index(self) -> int | None:
        """The selected run, or the first one when none is selected."""
        i = self._selected_index()
        return 0 if i is None and self.doc.ids else i

    def _quadratic_info(self) -> tuple[np.ndarray | None, float | None]:
        """(constant Hessian, minimum value) of the surface if it is a quadratic with a
        minimum (1 x 1 for f(x)); cached per surface. f* comes from one Newton step."""
        s = self.doc.surface
        if self._quadratic[0] is not s:
            h = theory.is_quadratic(s.hessian, s.box)
            if h is not None and getattr(s, "one_d", False):
                h = h[:1, :1]
            loss_min = None
            if h is not None:
                (x0, x1), (y0, y1) = s.box
                centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
                with contextlib.suppress(ValueError):
                    loss_min = theory.quadratic_minimum(s.value, s.gradient, h, centre)[1]
            self._quadratic = (s, h, loss_min)
        return self._quadratic[1], self._quadratic[2]

    def _draw_slice_and_theory(self, packet: FramePacket, slow_due: bool) -> None:
        d, f = self.doc, packet.frame
        i = self._theory_index()
        if i is None:
            self.slice_view.clear_ball("No ball: add one (Ctrl+B)")
            self.theory_panel.clear()
            self.loss_plot.set_prediction(None)
            return
        # Beside the other views the slice follows at 10 Hz while playing, repainted in the
        # same pass as the loss plot (a pass of its own composites the whole window again);
        # for f(x) it is the main view and follows every frame.
        one_d = bool(getattr(d.surface, "one_d", False))
        self._slice_repaint.set_active(packet.playing and not one_d)
        if self.slice_view.isVisible() and (slow_due or one_d):
            color = d.runs[i].color or "#888888"
            self.slice_view.update_ball(
                f.positions[i],
                f.gradients[i],
                f.deltas[i],
                color=color,
                batch_value=self._batch_loss(f, i),
            )
            if one_d:
                shown = [k for k, r in enumerate(d.runs) if r.visible]
                self.slice_view.update_balls(
                    [self.trails.get(d.ids[k]).positions[-ONE_D_ITERATES:] for k in shown],
                    [d.runs[k].color or "#888888" for k in shown],
                )
            self._slice_repaint.changed()
        if slow_due:  # the Hessian at the ball: 10 Hz at most while playing
            self._update_theory(i, f.positions[i])

    def _batch_loss(self, f, i: int):
        """The loss of the mini-batch run i's next step descends, or None (full batch)."""
        batches = getattr(f, "batches", ())
        surface = self.doc.surface
        if i >= len(batches) or batches[i] is None or getattr(surface, "data", None) is None:
            return None
        idx = batches[i]
        key = (id(surface), idx.tobytes())
        cached = self._batch_loss_cache
        if cached is None or cached[0] != key:
            # one function object per batch, kept alive: the slice view's redraw check then
            # sees "same batch" exactly when it is, never a recycled id
            cached = (key, surface, lambda points: surface.batch_value(points, idx))
            self._batch_loss_cache = cached
        return cached[2]

    def _update_theory(self, i: int, position: np.ndarray) -> None:
        d = self.doc
        run_id, spec = d.ids[i], d.runs[i]
        quadratic, loss_min = self._quadratic_info()
        with np.errstate(all="ignore"):
            here = np.asarray(d.surface.hessian(position[None, :]), dtype=float)[0]
        if getattr(d.surface, "one_d", False):
            here = here[:1, :1]
        first = self._settings_since(run_id, spec)
        losses = self.trails.get(run_id).losses[first:]
        panel = self.theory_panel
        panel.show_run(spec.label, spec.optimizer, spec.params, here, quadratic, losses, loss_min)
        warning = lr_warning(spec.optimizer, spec.params, panel.ceiling)
        for rid, group in self.runs_panel.groups.items():
            text = warning if rid == run_id else ""
            if group.lr_warning() != text:
                group.set_lr_warning(text)
        ceiling = panel.ceiling
        self.status_ceiling.setText(
            f"{spec.label}: 2/λmax = {ceiling:.3g}" if math.isfinite(ceiling) else ""
        )
        self.status_ceiling.setStyleSheet("color: #b36b00;" if warning else "")
        if panel.prediction is not None and len(losses) and loss_min is not None:
            rate, f_min = panel.prediction
            gaps = theory.predicted_gaps(float(losses[0]) - f_min, rate, max(len(losses), 2))
            self.loss_plot.set_prediction(f_min + gaps, f"{spec.label}: theory", first=first)
        else:
            self.loss_plot.set_prediction(None)

    def _settings_since(self, run_id: int, spec: RunSpec) -> int:
        """The step from which the run has had its present optimizer and settings.

        Theory speaks of one setting: after "Use optimal" mid-run, the rate is measured and
        predicted from the step the new one took over, not over a history of two regimes.
        A restart (a new trail epoch) starts from step 0 again.
        """
        trail = self.trails.get(run_id)
        key = self._settings_key(run_id, spec)
        seen = self._theory_since.get(run_id)
        if seen is None or seen[0] != key:
            same_trail = seen is not None and seen[0][:2] == key[:2]
            self._theory_since[run_id] = (key, max(len(trail) - 1, 0) if same_trail else 0)
        return min(self._theory_since[run_id][1], max(len(trail) - 1, 0))

    def _settings_key(self, run_id: int, spec: RunSpec) -> tuple:
        epoch = self.trails.get(run_id).epoch
        return (self.trails.generation, epoch, spec.optimizer, repr(sorted(spec.params.items())))

    def _mark_settings_changed(self, run_id: int) -> None:
        """An edit of a run: its new settings rule from the step its ball is at now (exact
        when paused; while playing, the worker may take a step or two before it hears)."""
        packet = self.packet
        if packet is None or run_id not in packet.ids or run_id not in self.doc.ids:
            return
        step = int(packet.frame.step[packet.ids.index(run_id)])
        self._theory_since[run_id] = (self._settings_key(run_id, self.doc.run(run_id)), step)

    def use_optimal_settings(self) -> None:
        """Heavy-ball optimal lr and momentum on the theory's run (one undo step); a run of
        another optimizer is switched to SGD, which is the heavy ball."""
        optimal, i = self.theory_panel.optimal, self._theory_index()
        if optimal is None or i is None:
            self.statusBar().showMessage("Optimal settings exist only on a convex quadratic", 5000)
            return
        run_id = self.doc.ids[i]
        spec = self.doc.run(run_id)
        params = dict(spec.params) if spec.optimizer == "sgd" else {}
        params.update(lr=optimal.hb_lr, momentum=optimal.hb_momentum, dampening=0.0)
        params["nesterov"] = False
        changes: dict = {"params": params}
        if spec.optimizer != "sgd":
            changes["optimizer"] = "sgd"
        if self._try(lambda: self.doc.edit_run(run_id, changes)):
            self.statusBar().showMessage(
                f"{spec.label}: lr = {optimal.hb_lr:.4g}, momentum = {optimal.hb_momentum:.4g}"
                " (heavy-ball optimum; Ctrl+Z undoes)",
                6000,
            )

    # ------------------------------------------------------------------ export
    def export_image(self, which: str, path: Path | None = None, size=None) -> bool:
        """Save the 3-D or contour view as PNG at a chosen size; atomically, with a clear error.

        For a function of x only the main view is the slice (the curve f(x)), so that is what
        either export saves: the 3-D view and contour map are not on screen then."""
        view = self.view3d if which == "3d" else self.contour
        if self._central.currentIndex() == 1:
            view, which = self.slice_view.plot, "curve"
        if size is None and path is None:
            choice, ok = QInputDialog.getItem(
                self, "Image size", "Size", list(EXPORT_SIZES), 1, False
            )
            if not ok:
                return False
            size = EXPORT_SIZES[choice]
        if size is None:
            size = (view.width(), view.height())
        elif isinstance(size, int):
            size = (view.width() * size, view.height() * size)
        if path is None:
            suggested = Path.home() / f"gdsim-{which}.png"
            path = self._ask_save_path("Export image", suggested, "PNG image (*.png)", ".png")
            if path is None:
                return False
        if path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        image = render_view(view, int(size[0]), int(size[1]))
        if image.isNull():
            QMessageBox.warning(self, "Export failed", "The view could not be rendered.")
            return False
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        buffer.close()
        try:
            atomic_write(path, bytes(data.data()))
        except OSError as exc:
            QMessageBox.warning(
                self, "Export failed", f"Cannot write {path}:\n{exc.strerror or exc}"
            )
            return False
        self.statusBar().showMessage(f"Saved {path} ({image.width()}x{image.height()})", 5000)
        return True

    def export_trajectories(self, path: Path | None = None) -> None:
        """CSV or JSON in the format of `gdsim run`, from a copy of the running simulation."""
        if path is None:
            suggested = Path.home() / "trajectories.csv"
            filters = "CSV (*.csv);;JSON (*.json)"
            path = self._ask_save_path("Export trajectories", suggested, filters, None)
            if path is None:
                return
        try:
            format_for(path)
        except ValueError as exc:
            QMessageBox.warning(self, "Export failed", f"{path}:\n{exc}")
            return
        self._with_snapshot(lambda sim: self._write_trajectories(path, sim))

    def _with_snapshot(self, use) -> None:
        """Ask the worker for a copy of the simulation; `use(sim)` runs when it arrives."""
        self._snapshot_token += 1
        self._pending[self._snapshot_token] = use
        self.worker.post("snapshot", self._snapshot_token)

    def _on_snapshot(self, token: int, sim) -> None:
        use = self._pending.pop(token, None)
        if use is not None:
            use(sim)

    def export_figure(self, path: Path | None = None, options: dict | None = None) -> None:
        """PNG/SVG/PDF or GIF/MP4 through the code `gdsim render` uses, from this simulation."""
        if path is None:
            suggested = Path.home() / "gdsim-figure.png"
            filters = "Figures (*.png *.svg *.pdf);;Animations (*.gif *.mp4)"
            path = self._ask_save_path("Export figure", suggested, filters, None)
            if path is None:
                return
        try:
            fmt = figures.format_for(path)
        except ValueError as exc:
            QMessageBox.warning(self, "Export failed", f"{path}:\n{exc}")
            return
        animated = fmt in figures.ANIMATION_FORMATS
        if options is None:
            dialog = FigureDialog(animated, self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            options = dialog.options()
        self._with_snapshot(lambda sim: self._write_figure(path, sim, fmt, options))

    def _write_figure(self, path: Path, sim, fmt: str, options: dict) -> None:
        scenario = self.doc.to_scenario()
        common = {
            "view": options["view"],
            "size": tuple(options["size"]),
            "theme": options["theme"],
        }
        try:
            if fmt in figures.ANIMATION_FORMATS:
                with_progress(
                    self,
                    f"Rendering {path.name}…",
                    lambda progress: figures.write_animation(
                        path,
                        sim,
                        scenario,
                        fps=int(options["fps"]),
                        duration=float(options["duration"]),
                        progress=progress,
                        **common,
                    ),
                )
            else:
                QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
                try:
                    figures.write_figure(path, sim, scenario, **common)
                finally:
                    QApplication.restoreOverrideCursor()
        except Cancelled:
            self.statusBar().showMessage(f"Export of {path.name} cancelled; nothing written", 5000)
            self.exportFinished.emit(str(path), False)
            return
        except (OSError, ValueError) as exc:
            message = getattr(exc, "strerror", None) or str(exc)
            QMessageBox.warning(self, "Export failed", f"Cannot write {path}:\n{message}")
            self.exportFinished.emit(str(path), False)
            return
        self.statusBar().showMessage(f"Saved {path}", 5000)
        self.exportFinished.emit(str(path), True)

    def toggle_recording(self, on: bool, path: Path | None = None) -> None:
        """Record the 3-D view as shown; stopping writes the GIF/MP4 (progress, cancel)."""
        if on:
            if path is None:
                suggested = Path.home() / "gdsim-recording.mp4"
                filters = "MP4 video (*.mp4);;GIF animation (*.gif)"
                path = self._ask_save_path("Record the 3-D view to", suggested, filters, None)
            try:
                if path is None or figures.format_for(path) not in figures.ANIMATION_FORMATS:
                    raise ValueError("choose a .gif or .mp4 file")
            except ValueError as exc:
                if path is not None:
                    QMessageBox.warning(self, "Cannot record", f"{path}:\n{exc}")
                self.act_record.setChecked(False)
                return
            self._recorder = Recorder(path, self.view3d.gl_widget.grabFramebuffer)
            self.act_record.setChecked(True)
            self.statusBar().showMessage(f"Recording the 3-D view to {path.name}…", 3000)
            return
        recorder, self._recorder = self._recorder, None
        self.act_record.setChecked(False)
        if recorder is None or not recorder.frames:
            self.statusBar().showMessage("Recording stopped: nothing was recorded", 5000)
            return
        colors = [r.color or "#888888" for r in self.doc.runs]
        try:
            with_progress(
                self,
                f"Writing {recorder.path.name}…",
                lambda progress: figures.write_frames(
                    recorder.path, recorder.frames, RECORD_FPS, colors=colors, progress=progress
                ),
            )
        except Cancelled:
            self.statusBar().showMessage("Recording discarded; nothing written", 5000)
            self.exportFinished.emit(str(recorder.path), False)
            return
        except (OSError, ValueError) as exc:
            message = getattr(exc, "strerror", None) or str(exc)
            QMessageBox.warning(
                self, "Recording failed", f"Cannot write {recorder.path}:\n{message}"
            )
            self.exportFinished.emit(str(recorder.path), False)
            return
        self.statusBar().showMessage(
            f"Saved {len(recorder.frames)} frames to {recorder.path}", 5000
        )
        self.exportFinished.emit(str(recorder.path), True)

    def _write_trajectories(self, path: Path, sim) -> None:
        try:
            rows = write_trajectories(path, sim, self.doc.to_scenario())
        except (OSError, ValueError) as exc:
            message = getattr(exc, "strerror", None) or str(exc)
            QMessageBox.warning(self, "Export failed", f"Cannot write {path}:\n{message}")
            self.exportFinished.emit(str(path), False)
            return
        self.statusBar().showMessage(f"Saved {rows} rows to {path}", 5000)
        self.exportFinished.emit(str(path), True)

    # ------------------------------------------------------------------ help
    def show_help(self) -> None:
        QMessageBox.information(self, "gdsim help", HELP_TEXT)

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About gdsim",
            f"<b>gdsim {__version__}</b><br>Gradient descent, made visible.<br>"
            "Optimizers follow torch.optim exactly; surfaces are exact (symbolic gradients).",
        )

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and all(
            u.isLocalFile() and u.toLocalFile().lower().endswith(".json") for u in urls
        ):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and self._confirm_discard():
            self.open_path(Path(urls[0].toLocalFile()))
            event.acceptProposedAction()

    # ------------------------------------------------------------------ settings and closing
    def _restore_settings(self) -> None:
        settings = QSettings()
        geometry = settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = settings.value("window/state")
        self._layout_restored = state is not None and self.restoreState(state)
        splitter = settings.value("window/splitter")
        if splitter is not None:
            self._splitter.restoreState(splitter)
        display = settings.value("view/display")
        if display:
            try:
                loaded = json.loads(str(display))
                self._display.update({k: loaded[k] for k in self._display if k in loaded})
            except (ValueError, TypeError):
                pass
        speed = settings.value("playback/speed")
        if speed is not None:
            with contextlib.suppress(TypeError, ValueError):
                self.playback.speed.set_value(float(speed))
        toggles = settings.value("view/toggles")
        if toggles:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                saved = json.loads(str(toggles))
                for name, action in self._view_toggles().items():
                    if name in saved and bool(saved[name]) != action.isChecked():
                        action.trigger()  # through its slot, as a click would
        direction = settings.value("slice/direction")
        if direction in DIRECTIONS and self.slice_view.direction_combo.isEnabled():
            self.slice_view.set_direction(str(direction))
        epsilon = settings.value("slice/epsilon")
        if epsilon is not None:
            with contextlib.suppress(TypeError, ValueError):
                self.slice_view.set_epsilon(float(epsilon))
        self._rebuild_recent()

    def _view_toggles(self) -> dict[str, QAction]:
        """The View menu's on/off choices that a restart keeps (the map overlays of the
        explainer keep themselves)."""
        return {
            **{f"arrows/{k}": a for k, a in self.overlay_actions.items()},
            "log_loss": self.act_log_loss,
            "contour_lines_3d": self.act_contour_lines,
            "batch_contours": self.act_batch_contours,
        }

    def save_settings(self) -> None:
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/splitter", self._splitter.saveState())
        settings.setValue("view/display", json.dumps(self._display))
        settings.setValue("playback/speed", self.playback.speed.value())
        settings.setValue(
            "view/toggles", json.dumps({k: a.isChecked() for k, a in self._view_toggles().items()})
        )
        if self.slice_view.direction_combo.isEnabled():  # fixed to x for f(x): not a choice
            settings.setValue("slice/direction", self.slice_view.direction())
        settings.setValue("slice/epsilon", self.slice_view.epsilon())
        user_file = self.doc.path is not None and self._is_user_file(self.doc.path)
        settings.setValue("scenario/last_path", str(self.doc.path) if user_file else "")
        settings.sync()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._layout_restored:
            # First start: a modest strip for loss and readouts leaves room for the surface.
            self._layout_restored = True
            self._tab_bottom_docks()
            bottom = [self.docks["Loss"], self.docks["Readouts"]]
            self.resizeDocks(bottom, [220, 220], Qt.Orientation.Vertical)
            sides = [self.docks["Surface"], self.docks["Runs"]]
            self.resizeDocks(sides, [290, 360], Qt.Orientation.Horizontal)
            self.resizeDocks(
                bottom, [3 * self.width() // 5, 2 * self.width() // 5], Qt.Orientation.Horizontal
            )
            # The splitter knows its width only once the docks have been laid out.
            QTimer.singleShot(0, self._share_views)

    def _tab_bottom_docks(self) -> None:
        """Data tabbed with Readouts, done once the window is shown: a second tab group made
        before the first show leaves Qt 6.11 drawing a stale copy of its tab bar over the
        loss plot (tests/ui/test_layout.py). A restored layout brings its own tabs."""
        self.tabifyDockWidget(self.docks["Readouts"], self.docks["Data"])
        has_data = getattr(self.doc.surface, "data", None) is not None
        self.docks["Data" if has_data else "Readouts"].raise_()

    def _share_views(self) -> None:
        """3-D view and contour map side by side, the 3-D one a little wider."""
        width = max(self._splitter.width(), 2)
        self._splitter.setSizes([width * 11 // 20, width * 9 // 20])

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._confirm_discard():
            event.ignore()
            return
        self._timer.stop()
        self.save_settings()
        self.sweep_panel.shutdown()
        self.worker.shutdown()
        event.accept()
