"""Wiring of "seeing the mathematics" on the contour map: the map-only overlays (downhill
field, plain GD step, per-axis effective step boxes) and the step-by-step explainer dock.

Kept out of main_window.py so the window only builds it, docks its panel and hands it each
drawn packet. The window never touches the Simulation: the explainer asks the worker with an
"explain" message and gets the stages back through ``SimulationWorker.explained``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction

from gdsim.engine.explain import fmt_vec
from gdsim.engine.simulation import Status
from gdsim.ui.panels.explain import ExplainPanel, step_boxes

if TYPE_CHECKING:
    from gdsim.ui.main_window import MainWindow
    from gdsim.ui.worker import FramePacket

#: Points per side of the downhill field's grid.
FIELD_GRID = 17
SETTINGS_KEY = "view/map_overlays"


class Explainer:
    """Owns the explain panel and the map-only overlay actions of one main window."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.panel = ExplainPanel()
        self._token = 0
        self._pending: int | None = None
        # (run id, steps taken when explained, first packet serial after it) of the
        # explanation shown
        self._context: tuple[int, int, int] | None = None
        self._applying = False
        self._field_key: tuple | None = None
        a = window._action
        self.act_explain = a(
            "&Explain step",
            lambda: self.request(),
            Qt.Key.Key_E,
            "Pause and play the selected run's next update in stages, drawn on the map (E)",
        )
        self.act_next = a(
            "Next stage", lambda: self.panel.next_stage(), Qt.Key.Key_Period, "Next stage (.)"
        )
        self.act_prev = a(
            "Previous stage",
            lambda: self.panel.previous_stage(),
            Qt.Key.Key_Comma,
            "Previous stage (,)",
        )
        self.act_apply = a(
            "Apply explained step",
            lambda: self.panel.apply(),
            "Shift+E",
            "Take the explained step once its last stage is shown (Shift+E)",
        )
        self.act_field = a(
            "Gradient field (downhill)",
            lambda on: self._set("field", on),
            None,
            "A grid of arrows pointing downhill (−∇f) over the map; lengths normalised "
            "(log-scaled on surfaces whose slope spans decades)",
            checkable=True,
        )
        self.act_gd_step = a(
            "Plain GD step arrows (−lr·∇f)",
            lambda on: self._set("gd_step", on),
            None,
            "At each ball, −lr·∇f from where its last step started: what plain gradient "
            "descent would have done, drawn at the same scale as the step actually taken",
            checkable=True,
        )
        self.act_boxes = a(
            "Effective step boxes (adaptive)",
            lambda on: self._set("boxes", on),
            None,
            "Beside each AdaGrad/RMSprop/Adadelta/Adam-family ball: a box whose half-sides are "
            "the per-axis step sizes |effective lr × first moment| (effective lr = γ/(√v_hat+ε) "
            "for Adam): equal sides mean every axis moves at the same pace",
            checkable=True,
        )
        self.map_actions: dict[str, QAction] = {
            "field": self.act_field,
            "gd_step": self.act_gd_step,
            "boxes": self.act_boxes,
        }
        self._install_menu()

        p = self.panel
        p.explainRequested.connect(self._ask)
        p.stageChanged.connect(self._show_stage)
        p.applyRequested.connect(self._apply)
        p.runChanged.connect(lambda: self.clear("") if self._context is not None else None)
        window.worker.explained.connect(self._on_explained)
        doc = window.doc
        doc.loaded.connect(self._loaded)
        doc.runsChanged.connect(lambda: self._runs_changed(clear=False))
        doc.runEdited.connect(self._run_edited)
        doc.surfaceChanged.connect(self._surface_changed)
        self._restore()

    # ------------------------------------------------------------------ menus and settings
    def _install_menu(self) -> None:
        w = self.window
        view = next(
            (m.menu() for m in w.menuBar().actions() if m.menu() and m.text() == "&View"), None
        )
        if view is None:
            return
        before = w.act_log_loss
        view.insertActions(before, list(self.map_actions.values()))
        sim = next(m.menu() for m in w.menuBar().actions() if m.text() == "&Simulation")
        sim.addSeparator()
        sim.addActions([self.act_explain, self.act_next, self.act_prev, self.act_apply])

    def _restore(self) -> None:
        raw = QSettings().value(SETTINGS_KEY)
        try:
            saved = json.loads(str(raw)) if raw else {}
        except (ValueError, TypeError):
            saved = {}
        for key, act in self.map_actions.items():
            on = bool(saved.get(key, False)) if isinstance(saved, dict) else False
            act.setChecked(on)
            self._set(key, on, save=False)

    def _set(self, key: str, on: bool, save: bool = True) -> None:
        c = self.window.contour
        if key == "field":
            c.set_gradient_field_visible(on)
            if on:
                self.update_field()
        elif key == "gd_step":
            c.set_overlay_visible("gd_step", on)
            self.window.worker.post("gd_steps", on)
        else:
            c.set_step_boxes_visible(on)
            self.window.worker.post("internals", on)
        self.window._drawn_packet = None
        if save:
            QSettings().setValue(
                SETTINGS_KEY, json.dumps({k: a.isChecked() for k, a in self.map_actions.items()})
            )

    # ------------------------------------------------------------------ the downhill field
    def update_field(self) -> None:
        """Recompute the field when the surface or the box changed (not every frame)."""
        if not self.act_field.isChecked():
            return
        d = self.window.doc
        key = (id(d.surface), d.box)
        if key == self._field_key:
            return
        x, y = self.field_nodes()
        gx, gy = np.meshgrid(x, y, indexing="ij")
        with np.errstate(all="ignore"):
            g = np.asarray(d.surface.gradient(np.stack([gx.ravel(), gy.ravel()], 1)), float)
        g = g.reshape(FIELD_GRID, FIELD_GRID, 2)
        self.window.contour.set_gradient_field(
            x, y, g[..., 0], g[..., 1], log=_wide_range(g.reshape(-1, 2))
        )
        self._field_key = key

    def field_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """The field's grid: nodes inset by half a cell, so the arrows stay inside the box."""
        (x0, x1), (y0, y1) = self.window.doc.box
        x = np.linspace(x0, x1, FIELD_GRID + 1)[:-1] + (x1 - x0) / (2 * FIELD_GRID)
        y = np.linspace(y0, y1, FIELD_GRID + 1)[:-1] + (y1 - y0) / (2 * FIELD_GRID)
        return x, y

    def _surface_changed(self) -> None:
        self.update_field()
        self.clear("The surface changed: the explanation was cleared.")

    # ------------------------------------------------------------------ explainer
    def request(self) -> None:
        dock = self.window.docks.get("Explain")
        if dock is not None:
            dock.show()
            dock.raise_()
        # The picker follows the selection at each redraw; a key pressed right after a new
        # selection must not explain the run selected before it.
        self.panel.follow_selection(self.window._selected)
        self.panel.request()

    def _ask(self, run_id: int) -> None:
        w = self.window
        w.set_playing(False)
        self.clear("")
        self._token += 1
        self._pending = self._token
        w.worker.post("explain", self._token, run_id)

    def _on_explained(
        self, token: Any, run_id: int, rs: Any, ex: Any, error: str, serial: int
    ) -> None:
        if token != self._pending:
            return  # an older request, or one cleared since
        self._pending = None
        w = self.window
        if run_id not in w.doc.ids:
            return
        label = w.doc.run(run_id).label
        if ex is None:
            self.panel.show_message(f"{label}: {error}")
            return
        self._context = (run_id, int(rs.steps), serial)
        self.panel.show_explanation(label, ex, int(rs.steps) + 1)

    def _show_stage(self, index: int) -> None:
        ex = self.panel.explanation()
        if ex is not None:
            self.window.contour.show_explanation(ex.stages, index)

    def _apply(self) -> None:
        if self._context is None:
            return
        run_id, steps, _ = self._context
        self._applying = True
        self.window.worker.post("apply_step", run_id, steps)

    def clear(self, message: str = "The explanation was out of date and has been cleared.") -> None:
        self._context = None
        self._pending = None
        self._applying = False
        self.panel.clear(message)
        self.window.contour.clear_explanation()

    def add_dock_toggle(self, dock: Any) -> None:
        """The dock's show/hide action in the View menu, beside the other docks'."""
        view = next(
            (m.menu() for m in self.window.menuBar().actions() if m.text() == "&View"), None
        )
        if view is not None:
            first = next((a for a in view.actions() if a.isSeparator()), None)
            view.insertAction(first, dock.toggleViewAction())

    def _loaded(self) -> None:
        self._field_key = None
        self.update_field()
        self._runs_changed(clear=True)

    def _run_edited(self, run_id: int) -> None:
        self._runs_changed(clear=False)
        if self._context is not None and self._context[0] == run_id:
            self.clear("The run's settings changed: the explanation was cleared.")

    def _runs_changed(self, clear: bool) -> None:
        d = self.window.doc
        self.panel.set_runs(d.ids, [r.label for r in d.runs])
        if clear or (self._context is not None and self._context[0] not in d.ids):
            self.clear()

    # ------------------------------------------------------------------ per drawn packet
    def step_boxes(self, packet: FramePacket) -> np.ndarray | None:
        return step_boxes(packet.internals, len(packet.ids))

    def _label_internals(self, packet: FramePacket) -> None:
        """With the effective-step boxes on, the selected adaptive ball's numbers beside it:
        per-axis accumulator, effective learning rate and step size."""
        w = self.window
        i = w._selected_index()
        inside = packet.internals or ()
        it = None
        if self.act_boxes.isChecked() and i is not None and i < len(inside):
            it = inside[i]
        if it is None:
            w.contour.set_internals_label(None)
            return
        acc = it.accumulator_label.split(" = ")[0]
        text = (
            f"{acc} = {fmt_vec(it.accumulator)}\n"
            f"effective lr = {fmt_vec(it.effective_lr)}\n"
            f"step per axis = {fmt_vec(it.step_size)}"
        )
        w.contour.set_internals_label(packet.frame.positions[i], text)

    def on_drawn(self, packet: FramePacket) -> None:
        """Follow the selection, and drop an explanation the simulation has moved past."""
        w = self.window
        self.panel.follow_selection(w._selected)
        self._label_internals(packet)
        if self._context is None:
            return
        run_id, steps, serial = self._context
        if packet.serial < serial:
            return  # sent before the explanation: it says nothing about it
        if run_id not in packet.ids:
            self.clear()
            return
        i = packet.ids.index(run_id)
        now = int(packet.frame.step[i])
        if self._applying and now == steps + 1:
            self._context, self._applying = None, False
            w.contour.clear_explanation()
            self.panel.applied(np.array(packet.frame.positions[i]))
        elif self._applying and packet.frame.status[i] is not Status.RUNNING:
            self.clear(f"The step was taken and the run {packet.frame.status[i].value}.")
        elif now != steps:
            self.clear()


def _wide_range(g: np.ndarray) -> bool:
    """Log-scaled field lengths when the slope spans more than two decades over the box."""
    n = np.hypot(g[:, 0], g[:, 1])
    n = n[np.isfinite(n) & (n > 0)]
    return bool(n.size and n.max() > 100 * np.median(n))
