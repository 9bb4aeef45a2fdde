"""The window's model: the experiment being edited, with undo.

Panels write edits here and nowhere else; views and the worker follow its signals (the napari
pattern: the model emits, everything else listens). Every edit goes through one QUndoStack as a
pair of snapshots, so undo/redo and "unsaved changes" come from one mechanism. Restoring a
snapshot emits only what differs, so undoing a learning-rate change does not restart the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from gdsim.engine import optimizers, schedules
from gdsim.engine.simulation import RunSpec, StopRules
from gdsim.engine.surfaces import Surface
from gdsim.export.figures import PALETTE  # run colours: one palette for the window and files
from gdsim.scenario import MAX_BOX, Scenario, SurfaceSpec

Box = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Snapshot:
    """Everything undo can restore. Runs are kept as copies; nothing here is shared."""

    surface_spec: tuple[tuple[str, Any], ...]
    box: Box
    ids: tuple[int, ...]
    runs: tuple[RunSpec, ...]
    steps: int
    stop: tuple[float | None, float | None]
    seed: int
    meta: tuple[tuple[str, Any], ...] = field(default=())


def _freeze(d: dict) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, _freeze(v) if isinstance(v, dict) else v) for k, v in d.items()))


def _thaw(t: tuple[tuple[str, Any], ...]) -> dict:
    return {
        k: _thaw(v) if isinstance(v, tuple) and v and isinstance(v[0], tuple) else v for k, v in t
    }


def build_surface(spec: dict, box: Box | None = None) -> Surface:
    """A Surface from a scenario's surface entry; ValueError (FormulaError) says what is wrong.

    A built-in keeps its own default box (the view box lives beside it in the document); a
    formula is checked for finiteness on the box it will be drawn in.
    """
    if "formula" in spec:
        return SurfaceSpec(formula=spec["formula"], box=box, title=spec.get("title")).build()
    return SurfaceSpec(name=spec["name"], params=dict(spec.get("params") or {})).build()


class _Edit(QUndoCommand):
    def __init__(self, doc: Document, before: Snapshot, after: Snapshot, text: str, key: str):
        super().__init__(text)
        self._doc, self._before, self._after, self._key = doc, before, after, key

    def id(self) -> int:  # same key -> consecutive edits merge (a slider drag is one undo step)
        return 1 if self._key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, _Edit) or other._key != self._key or not self._key:
            return False
        self._after = other._after
        return True

    def redo(self) -> None:
        self._doc._restore(self._after)

    def undo(self) -> None:
        self._doc._restore(self._before)


class Document(QObject):
    surfaceChanged = Signal()
    runsChanged = Signal()  # runs were added, removed or reordered
    runEdited = Signal(int)  # one run's spec changed (its id)
    settingsChanged = Signal()  # step budget, stop rules or seed
    loaded = Signal()  # a whole new scenario (open, new, restore)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.path: Path | None = None
        self._next_id = 1
        self.surface_spec: dict = {"name": "bowl"}
        self.surface: Surface = build_surface(self.surface_spec)
        self.box: Box = self.surface.box
        self.ids: list[int] = []
        self.runs: list[RunSpec] = []
        self.steps = 500
        self.stop = StopRules()
        self.seed = 0
        self.title = ""
        self.description = ""

    # -- whole scenarios ----------------------------------------------------------------------
    def load_scenario(self, scenario: Scenario, path: Path | None) -> None:
        """Replace everything with `scenario` (already validated) and forget the undo history."""
        spec = scenario.surface.to_dict()
        spec.pop("box", None)
        box = scenario.surface.box
        surface = build_surface(spec, box)
        self.surface_spec, self.surface = spec, surface
        self.box = box or surface.box
        self.runs = [self._with_color(r.copy(), k) for k, r in enumerate(scenario.runs)]
        self.ids = [self._new_id() for _ in self.runs]
        self.steps = int(scenario.steps)
        stop = scenario.stop or StopRules()
        self.stop = StopRules(None, stop.grad_tol, stop.loss_tol)
        self.seed = int(scenario.seed)
        self.title, self.description = scenario.title or "", scenario.description or ""
        self.path = path
        self.undo_stack.clear()
        self.loaded.emit()

    def to_scenario(self) -> Scenario:
        spec = dict(self.surface_spec)
        custom_box = "formula" in spec or self.box != self.surface.box
        surface = SurfaceSpec(
            name=spec.get("name"),
            formula=spec.get("formula"),
            params=dict(spec.get("params") or {}),
            box=self.box if custom_box else None,
            title=spec.get("title"),
        )
        stop = StopRules(None, self.stop.grad_tol, self.stop.loss_tol)
        has_stop = stop.grad_tol is not None or stop.loss_tol is not None
        return Scenario(
            surface,
            [r.copy() for r in self.runs],
            steps=self.steps,
            seed=self.seed,
            stop=stop if has_stop else None,
            title=self.title,
            description=self.description,
        )

    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_saved(self, path: Path) -> None:
        self.path = path
        self.undo_stack.setClean()

    # -- queries ------------------------------------------------------------------------------
    def run(self, run_id: int) -> RunSpec:
        return self.runs[self.ids.index(run_id)]

    def index(self, run_id: int) -> int:
        return self.ids.index(run_id)

    # -- edits (each one an undo step) --------------------------------------------------------
    def edit_run(self, run_id: int, changes: dict, *, merge_key: str = "") -> None:
        """Apply `changes` to one run after checking them; ValueError leaves everything as is."""
        old = self.run(run_id)
        new = replace(old.copy(), **changes)
        if "params" in changes or "optimizer" in changes:
            optimizers.create(new.optimizer, **new.params)  # validates, names the parameter
        if "schedule" in changes and new.schedule is not None:
            sched = dict(new.schedule)
            schedules.create(sched.pop("name"), **sched)
        if "batch_size" in changes and new.batch_size is not None:
            k = new.batch_size
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(f"batch_size: must be a whole number >= 1, got {k!r}")
        if "noise" in changes and not new.noise >= 0:
            raise ValueError(f"noise: must be >= 0, got {new.noise}")
        if "start" in changes:
            value = self.surface.value(np.asarray([new.start], dtype=float))[0]
            if not abs(value) < float("inf"):
                raise ValueError(f"start: f is not finite at {new.start}")
        runs = list(self.runs)
        runs[self.index(run_id)] = new
        what = ", ".join(sorted(changes))
        key = f"run{run_id}:{','.join(sorted(changes))}" if merge_key else ""
        self._push(f"Change {what} of {old.label}", key, runs=runs)

    def add_run(self, spec: RunSpec) -> int:
        run_id = self._new_id()
        spec = self._with_color(spec.copy(), len(self.runs))
        self._push(f"Add {spec.label}", "", ids=[*self.ids, run_id], runs=[*self.runs, spec])
        return run_id

    def add_runs(self, specs: list[RunSpec], text: str) -> list[int]:
        new_ids = [self._new_id() for _ in specs]
        colored = [self._with_color(s.copy(), len(self.runs) + k) for k, s in enumerate(specs)]
        self._push(text, "", ids=[*self.ids, *new_ids], runs=[*self.runs, *colored])
        return new_ids

    def remove_run(self, run_id: int) -> None:
        k = self.index(run_id)
        label = self.runs[k].label
        ids = self.ids[:k] + self.ids[k + 1 :]
        runs = self.runs[:k] + self.runs[k + 1 :]
        self._push(f"Remove {label}", "", ids=ids, runs=runs)

    def duplicate_run(self, run_id: int) -> int:
        spec = self.run(run_id).copy()
        spec = replace(spec, label=f"{spec.label} (copy)", color=None)
        return self.add_run(spec)

    def set_surface(self, spec: dict, box: Box | None = None) -> None:
        """Switch surface; the box becomes the new surface's default unless given."""
        surface = build_surface(spec, box)
        runs = self.runs
        if getattr(surface, "one_d", False):
            # f(x) is drawn on one row: every ball starts there (y = 0 where the box has it).
            (_, _), (y0, y1) = box or surface.box
            row = 0.0 if y0 <= 0.0 <= y1 else 0.5 * (y0 + y1)
            runs = [replace(r.copy(), start=(float(r.start[0]), row)) for r in self.runs]
        for r in runs:
            value = surface.value(np.asarray([r.start], dtype=float))[0]
            if not abs(value) < float("inf"):
                raise ValueError(f"{r.label}: f is not finite at its start {tuple(r.start)}")
        self._push("Change surface", "", surface_spec=spec, box=box or surface.box, runs=runs)

    def set_box(self, box: Box) -> None:
        (x0, x1), (y0, y1) = box
        if not (x0 < x1 and y0 < y1):
            raise ValueError("box: min must be below max on both axes")
        if max(abs(x0), abs(x1), abs(y0), abs(y1)) > MAX_BOX:
            raise ValueError(f"box: must lie within ±{MAX_BOX:g}")
        self._push("Change view box", "box", box=box)

    def set_steps(self, steps: int) -> None:
        if steps < 1:
            raise ValueError("steps: must be >= 1")
        self._push("Change step budget", "steps", steps=int(steps))

    def set_stop(self, grad_tol: float | None, loss_tol: float | None) -> None:
        self._push("Change stop rules", "stop", stop=(grad_tol, loss_tol))

    # -- snapshots ----------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return Snapshot(
            _freeze(self.surface_spec),
            self.box,
            tuple(self.ids),
            tuple(r.copy() for r in self.runs),
            self.steps,
            (self.stop.grad_tol, self.stop.loss_tol),
            self.seed,
        )

    def _push(self, text: str, key: str, **changes: Any) -> None:
        before = self.snapshot()
        fields = {
            "surface_spec": _freeze(changes["surface_spec"])
            if "surface_spec" in changes
            else before.surface_spec,
            "box": changes.get("box", before.box),
            "ids": tuple(changes.get("ids", before.ids)),
            "runs": tuple(r.copy() for r in changes.get("runs", before.runs)),
            "steps": changes.get("steps", before.steps),
            "stop": changes.get("stop", before.stop),
        }
        after = replace(before, **fields)
        self.undo_stack.push(_Edit(self, before, after, text, key))

    def _restore(self, snap: Snapshot) -> None:
        spec = _thaw(snap.surface_spec)
        surface_changed = spec != self.surface_spec or snap.box != self.box
        if spec != self.surface_spec:
            self.surface = build_surface(spec, snap.box)
        self.surface_spec, self.box = spec, snap.box
        structure_changed = tuple(self.ids) != snap.ids
        old = dict(zip(self.ids, self.runs, strict=True))
        self.ids = list(snap.ids)
        self.runs = [r.copy() for r in snap.runs]
        settings_changed = (snap.steps, snap.stop) != (
            self.steps,
            (self.stop.grad_tol, self.stop.loss_tol),
        )
        self.steps = snap.steps
        self.stop = StopRules(None, *snap.stop)
        if surface_changed:
            self.surfaceChanged.emit()
        if structure_changed:
            self.runsChanged.emit()
        for run_id, spec_now in zip(self.ids, self.runs, strict=True):
            if run_id in old and old[run_id] != spec_now:
                self.runEdited.emit(run_id)
        if settings_changed:
            self.settingsChanged.emit()

    # -- helpers ------------------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _with_color(self, spec: RunSpec, k: int) -> RunSpec:
        if not spec.color:
            used = {r.color for r in self.runs}
            free = [c for c in PALETTE if c not in used] or list(PALETTE)
            spec = replace(spec, color=free[k % len(free)] if free else PALETTE[k % len(PALETTE)])
        return spec
