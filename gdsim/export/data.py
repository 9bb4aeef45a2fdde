"""Trajectories as data: CSV for spreadsheets and pandas, JSON for programs.

Why these choices:

* Floats are written with Python's ``repr`` (the shortest text that reads back as the same
  float), so a number read back from either file is the number the simulation computed, bit
  for bit. ``0.1`` stays ``0.1``, not ``0.10000000000000001``.
* CSV is long format, one row per run and step, columns starting ``run,step,x,y,loss`` (then
  ``grad_x,grad_y,lr,status,label``): it loads straight into pandas or a spreadsheet and
  filters by run. ``status`` is ``running`` on every row except the last row of a run that
  stopped, which says ``converged`` or ``diverged`` (a run that diverged at step k ends with its
  last finite row, k - 1).
* JSON holds the same numbers column-wise per run, plus what a program needs to interpret them:
  label, optimizer, params, schedule, noise, status with the step it stopped at, and the
  scenario document when there is one.
* Files are written atomically (see :mod:`gdsim.export.atomic`): an interrupted export never
  leaves half a file behind.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from gdsim.engine.simulation import RunSpec, Simulation, Status
from gdsim.export.atomic import atomic_open

if TYPE_CHECKING:
    from gdsim.engine.surfaces import Surface
    from gdsim.scenario import Scenario

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "JSON_KIND",
    "RunData",
    "format_for",
    "read_csv",
    "read_json",
    "run_document",
    "runs_from_simulation",
    "write_csv",
    "write_json",
    "write_runs",
    "write_trajectories",
]

CSV_COLUMNS = ("run", "step", "x", "y", "loss", "grad_x", "grad_y", "lr", "status", "label")
FORMATS = ("csv", "json")
JSON_KIND = "gdsim-trajectories"
_FLOAT_COLUMNS = ("x", "y", "loss", "grad_x", "grad_y", "lr")
_BLOCK = 8192


@dataclass(frozen=True)
class RunData:
    """One run's trajectory and how it ended: what both file formats are written from."""

    spec: RunSpec
    positions: np.ndarray  # (m, 2)
    losses: np.ndarray  # (m,)
    gradients: np.ndarray  # (m, 2)
    lrs: np.ndarray  # (m,)
    status: Status
    stopped_at: int = -1  # -1 while running
    reason: str | None = None
    first: int = 0  # step index of row 0


def format_for(path: str | os.PathLike[str]) -> str:
    """``"csv"`` or ``"json"`` from the file name; ValueError for anything else."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in FORMATS:
        shown = f"'.{ext}'" if ext else "none"
        raise ValueError(f"unknown file type (extension {shown}); use .csv or .json")
    return ext


def runs_from_simulation(sim: Simulation) -> list[RunData]:
    """Every run of ``sim`` with its whole history."""
    out = []
    for i, spec in enumerate(sim.runs):
        h = sim.history(i)
        out.append(
            RunData(
                spec,
                h.positions,
                h.losses,
                h.gradients,
                h.lrs,
                sim.status(i),
                sim.stopped_at(i),
                sim.stop_reason(i),
                h.first,
            )
        )
    return out


def write_trajectories(
    path: str | os.PathLike[str], sim: Simulation, scenario: Scenario | None = None
) -> int:
    """Write every run's history to ``path`` (.csv or .json); returns the rows written."""
    return write_runs(path, runs_from_simulation(sim), sim.surface, sim.seed, scenario)


def write_runs(
    path: str | os.PathLike[str],
    runs: Sequence[RunData],
    surface: Surface,
    seed: int | None = None,
    scenario: Scenario | None = None,
) -> int:
    """Write ``runs`` as CSV or JSON (by the file's extension); returns the rows written."""
    if format_for(path) == "csv":
        return write_csv(path, runs)
    return write_json(path, runs, surface, seed, scenario)


# ------------------------------------------------------------------------------------ CSV
def _csv_quoter() -> Any:
    """Quote a text field the way the csv module would (only when it must)."""

    class _Line:
        text = ""

        def write(self, s: str) -> None:
            self.text = s

    line = _Line()
    writer = csv.writer(line, lineterminator="")

    def quote(value: str) -> str:
        writer.writerow([value])
        return line.text

    return quote


def _csv_blocks(runs: Sequence[RunData]) -> Iterator[tuple[str, int]]:
    """The CSV text in blocks (header, then up to 8192 rows at a time) with their row counts.

    Every per-row loop is a C-level ``map``/``zip``/``join``: formatting is most of the cost of
    writing 800,000 rows, and ``repr`` per float is what exactness needs.
    """
    quote = _csv_quoter()
    yield ",".join(CSV_COLUMNS) + "\n", 0
    for i, r in enumerate(runs):
        n = len(r.losses)
        run, label = str(i), quote(r.spec.label)
        cols = [
            r.positions[:, 0].tolist(),
            r.positions[:, 1].tolist(),
            r.losses.tolist(),
            r.gradients[:, 0].tolist(),
            r.gradients[:, 1].tolist(),
            r.lrs.tolist(),
        ]
        for a in range(0, n, _BLOCK):
            b = min(a + _BLOCK, n)
            statuses = [Status.RUNNING.value] * (b - a)
            if b == n and r.status is not Status.RUNNING:
                statuses[-1] = r.status.value
            rows = zip(
                repeat(run, b - a),
                map(str, range(r.first + a, r.first + b)),
                *(map(repr, c[a:b]) for c in cols),
                statuses,
                repeat(label, b - a),
                strict=True,
            )
            yield "\n".join(map(",".join, rows)) + "\n", b - a


def write_csv(path: str | os.PathLike[str], runs: Sequence[RunData] | Simulation) -> int:
    """Long-format CSV, one row per run and step (see the module docstring). Returns rows."""
    if isinstance(runs, Simulation):
        runs = runs_from_simulation(runs)
    rows = 0
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        for text, n in _csv_blocks(runs):
            f.write(text)
            rows += n
    return rows


def read_csv(path: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """A CSV written by :func:`write_csv`, back as ``{run: {column: array}}`` (exact floats)."""
    out: dict[int, dict[str, Any]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            run = out.setdefault(int(row["run"]), {k: [] for k in CSV_COLUMNS[1:]})
            for k in CSV_COLUMNS[1:]:
                run[k].append(row[k])
    for run in out.values():
        run["step"] = np.array(run["step"], dtype=np.int64)
        for k in _FLOAT_COLUMNS:
            run[k] = np.array([float(v) for v in run[k]])
    return out


# ------------------------------------------------------------------------------------ JSON
def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def run_document(index: int, r: RunData) -> dict[str, Any]:
    """One run as a JSON-ready dict: who it is, how it ended, and its trajectory columns."""
    spec = r.spec
    n = len(r.losses)
    return {
        "run": index,
        "label": spec.label,
        "optimizer": spec.optimizer,
        "params": _plain(spec.params),
        "schedule": _plain(spec.schedule),
        "noise": spec.noise,
        "batch_size": spec.batch_size,
        "start": list(spec.start),
        "status": r.status.value,
        "stopped_at": None if r.stopped_at < 0 else int(r.stopped_at),
        "reason": r.reason,
        "steps": r.first + n - 1,
        "trajectory": {
            "step": list(range(r.first, r.first + n)),
            "x": r.positions[:, 0].tolist(),
            "y": r.positions[:, 1].tolist(),
            "loss": r.losses.tolist(),
            "grad_x": r.gradients[:, 0].tolist(),
            "grad_y": r.gradients[:, 1].tolist(),
            "lr": r.lrs.tolist(),
        },
    }


def write_json(
    path: str | os.PathLike[str],
    runs: Sequence[RunData] | Simulation,
    surface: Surface | None = None,
    seed: int | None = None,
    scenario: Scenario | None = None,
) -> int:
    """Runs with their trajectories (and the scenario, if given) as JSON. Returns rows."""
    if isinstance(runs, Simulation):
        surface, seed = runs.surface, runs.seed
        runs = runs_from_simulation(runs)
    head: dict[str, Any] = {"kind": JSON_KIND, "gdsim": 1}
    if surface is not None:
        head["surface"] = {
            "name": surface.name,
            "title": surface.title,
            "formula": surface.formula,
            "params": _plain(dict(surface.params)),
            "box": [list(map(float, surface.box[0])), list(map(float, surface.box[1]))],
        }
    head["seed"] = seed
    head["scenario"] = None if scenario is None else scenario.to_dict()
    rows = 0
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        text = json.dumps(head, ensure_ascii=False, allow_nan=False)
        f.write(text[:-1] + ', "runs": [')
        for i, r in enumerate(runs):
            doc = run_document(i, r)
            rows += len(r.losses)
            f.write(("\n  " if i == 0 else ",\n  ") + json.dumps(doc, allow_nan=False))
        f.write("\n]}\n")
    return rows


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON file written by :func:`write_json` (trajectory columns as NumPy arrays)."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for run in doc["runs"]:
        t = run["trajectory"]
        t["step"] = np.array(t["step"], dtype=np.int64)
        for k in _FLOAT_COLUMNS:
            t[k] = np.array(t[k], dtype=float)
    return doc
