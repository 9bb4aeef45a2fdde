"""Scenario: the whole experiment as data (surface, balls, optimizers, seed), saved as JSON.

Why a data file and not just the app's state: a scenario is what a teacher hands out, what a bug
report attaches, and what ``gdsim run`` replays headless; the same file gives the same numbers
everywhere (the simulation is deterministic for a seed).

Why strict validation: a file may come from anyone, written by hand. Every problem is reported
as a :class:`ScenarioError` naming the field the way a person would find it in the file
(``runs[2].params.lr: must be >= 0, got -0.1``): unknown fields are refused (a typo like
``"momentun"`` must not be ignored silently), types are checked, names are checked against the
catalogues, and a file that is not JSON gets its line and column. Nothing else ever escapes the
loader.

The format (``"gdsim": 1`` is the format version)::

    {"gdsim": 1, "title": "...", "description": "...",
     "surface": {"name": "rosenbrock"},            # or {"formula": "x^2 + 10*y^2",
                                                   #     "box": [[-3, 3], [-3, 3]]}
     "steps": 500, "seed": 0,
     "stop": {"grad_tol": 1e-6, "loss_tol": null, "max_steps": null},
     "runs": [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.05},
               "start": [-1.5, 2.0], "schedule": {"name": "step", "step_size": 100,
               "gamma": 0.5}, "noise": 0.0, "color": "#1f77b4", "visible": true,
               "batch_size": 8}]}

A built-in surface may carry ``params`` (e.g. ravine ``kappa``, ``angle``; a neural-network
surface's data ``seed``) and a view ``box``. A run's ``batch_size`` (absent or null = the full
batch) samples real mini-batches on a surface with data and does nothing on others.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gdsim._atomic import atomic_write
from gdsim.engine import optimizers, schedules, surfaces
from gdsim.engine.simulation import RunSpec, Simulation, StopRules

if TYPE_CHECKING:
    from gdsim.engine.surfaces import Surface

__all__ = [
    "FORMAT_VERSION",
    "MAX_STEPS",
    "Scenario",
    "ScenarioError",
    "ShippedScenario",
    "SurfaceSpec",
    "shipped",
    "shipped_path",
]

FORMAT_VERSION = 1
#: Most steps a scenario may ask for: the history of 10 million steps is already ~0.5 GB a ball.
MAX_STEPS = 10_000_000
DEFAULT_STEPS = 500
#: Largest batch_size a file may ask for (any size >= the data's points is the full batch).
MAX_BATCH = 1_000_000
DEFAULT_BOX = ((-3.0, 3.0), (-3.0, 3.0))
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_TOP_FIELDS = ("gdsim", "title", "description", "surface", "steps", "seed", "stop", "runs")
_SURFACE_FIELDS = ("name", "formula", "params", "box", "title")
_RUN_FIELDS = (
    "label", "optimizer", "params", "start", "schedule", "noise", "color", "visible",
    "batch_size",
)  # fmt: skip
_STOP_FIELDS = ("grad_tol", "loss_tol", "max_steps")

Box = tuple[tuple[float, float], tuple[float, float]]


class ScenarioError(ValueError):
    """A scenario that cannot be used: ``field`` says where (``runs[2].params.lr``), ``reason``
    says what. ``line``/``column`` are set when the file is not valid JSON."""

    def __init__(
        self,
        reason: str,
        field: str | None = None,
        *,
        line: int | None = None,
        column: int | None = None,
        source: str | None = None,
    ) -> None:
        self.reason = reason
        self.field = field
        self.line = line
        self.column = column
        self.source = source
        super().__init__(self._text())

    def _text(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.line is not None:
            where.append(f"line {self.line}, column {self.column}")
        if self.field:
            where.append(self.field)
        return ": ".join([*where, self.reason])

    def with_source(self, source: str) -> ScenarioError:
        return ScenarioError(
            self.reason, self.field, line=self.line, column=self.column, source=source
        )


# ---------------------------------------------------------------------------------- checking
def _kind(value: Any) -> str:
    """JSON's name for a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _object(
    value: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(f"must be an object, got {_kind(value)}", path or None)
    for key in value:
        if not isinstance(key, str):
            raise ScenarioError(f"field names must be strings, got {key!r}", path or None)
        if key not in allowed:
            raise ScenarioError(f"unknown field (allowed: {', '.join(allowed)})", _join(path, key))
    for key in required:
        if key not in value:
            raise ScenarioError("missing (required)", _join(path, key))
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fmt(v: float) -> str:
    """A bound as a person writes it: 10000000, not 1e+07; 0.5, not 0.5000."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else f"{v:g}"


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        lo, hi = _fmt(low), _fmt(high)
        return f"in {'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_fmt(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_fmt(high)}"
    return "a finite number"


def _number(
    value: Any,
    path: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> float:
    what = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"must be {what}, got {_kind(value)}", path)
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond float range
        finite = False
    if not finite:
        shown = repr(value) if isinstance(value, float) else "a number too large"
        raise ScenarioError(f"must be a finite number, got {shown}", path)
    if integer and isinstance(value, float) and not value.is_integer():
        raise ScenarioError(f"must be an integer, got {value!r}", path)
    ok = True
    if low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ScenarioError(
            f"must be {_range_text(low, high, low_open, high_open)}, got {value!r}", path
        )
    return value


def _integer(value: Any, path: str, low: int, high: int) -> int:
    return int(_number(value, path, low, high, integer=True))


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"must be a string, got {_kind(value)}", path)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON can spell a lone surrogate ("\ud800"); no file can hold it
        raise ScenarioError(
            "must be valid Unicode text (it holds a lone surrogate)", path
        ) from None
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"must be true or false, got {_kind(value)}", path)
    return value


def _pair(value: Any, path: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        got = f"{len(value)} items" if isinstance(value, list | tuple) else _kind(value)
        raise ScenarioError(f"must be a list of two numbers [x, y], got {got}", path)
    return (float(_number(value[0], f"{path}[0]")), float(_number(value[1], f"{path}[1]")))


#: The largest |coordinate| a view box may have.
MAX_BOX = 1e9


def _box(value: Any, path: str) -> Box:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ScenarioError("must be [[xmin, xmax], [ymin, ymax]]", path)
    out = []
    for k, axis in enumerate(value):
        lo, hi = _pair(axis, f"{path}[{k}]")
        if not lo < hi:
            raise ScenarioError(f"min must be less than max, got [{lo:g}, {hi:g}]", f"{path}[{k}]")
        if max(abs(lo), abs(hi)) > MAX_BOX:
            # Beyond this a grid of the box loses precision and "far outside the box" (the
            # divergence rule) stops meaning anything.
            raise ScenarioError(
                f"must lie within ±{MAX_BOX:g}, got [{lo:g}, {hi:g}]", f"{path}[{k}]"
            )
        out.append((lo, hi))
    return (out[0], out[1])


def _choice(value: Any, path: str, valid: list[str], what: str) -> str:
    name = _string(value, path)
    if name not in valid:
        raise ScenarioError(f"unknown {what} {name!r}; valid: {', '.join(valid)}", path)
    return name


def _hyper(value: Any, path: str, specs: tuple[Any, ...], fixed: tuple[str, ...] = ()) -> dict:
    """Hyperparameters checked against their declarations (optimizers.HyperParam)."""
    by_name = {p.name: p for p in specs}
    data = _object(value, path, (*fixed, *by_name))
    out: dict[str, Any] = {}
    for key, raw in data.items():
        if key in fixed:
            continue
        p = by_name[key]
        where = _join(path, key)
        if p.kind == "bool":
            out[key] = _bool(raw, where)
        elif p.kind == "pair":
            if not isinstance(raw, list | tuple) or len(raw) != 2:
                raise ScenarioError("must be a list of two numbers", where)
            out[key] = tuple(
                float(_number(raw[k], f"{where}[{k}]", p.low, p.high,
                              low_open=p.low_open, high_open=p.high_open))
                for k in range(2)
            )  # fmt: skip
        elif p.kind == "int":
            out[key] = int(
                _number(raw, where, p.low, p.high, low_open=p.low_open, high_open=p.high_open,
                        integer=True)
            )  # fmt: skip
        else:
            out[key] = float(
                _number(raw, where, p.low, p.high, low_open=p.low_open, high_open=p.high_open)
            )
    return out


# ---------------------------------------------------------------------------------- the model
@dataclass
class SurfaceSpec:
    """Which surface: a built-in ``name`` (with ``params``) or a custom ``formula``; ``box`` is
    the view box (None = the surface's own)."""

    name: str | None = None
    formula: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    box: Box | None = None
    title: str | None = None

    def build(self) -> Surface:
        """The engine's Surface; ValueError (FormulaError for a bad formula) if it cannot be."""
        if self.formula is not None:
            meta = {"title": self.title} if self.title else {}
            return surfaces.from_formula(self.formula, box=self.box or DEFAULT_BOX, **meta)
        if self.name is None:
            raise ValueError("a surface needs a name or a formula")
        surface = surfaces.get(self.name, **self.params)
        if self.box is not None:
            surface = replace(surface, box=self.box)
        return surface

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.formula is not None:
            out["formula"] = self.formula
        else:
            out["name"] = self.name
        if self.params:
            out["params"] = dict(self.params)
        if self.box is not None:
            out["box"] = [list(self.box[0]), list(self.box[1])]
        if self.title:
            out["title"] = self.title
        return out


@dataclass
class Scenario:
    """An experiment: a surface, balls (RunSpec) with their optimizers, steps, seed, stop rules."""

    surface: SurfaceSpec
    runs: list[RunSpec]
    steps: int = DEFAULT_STEPS
    seed: int = 0
    stop: StopRules | None = None
    title: str = ""
    description: str = ""
    _cache: tuple[SurfaceSpec, Surface] | None = field(
        default=None, init=False, compare=False, repr=False
    )

    # -------------------------------------------------------------- dict / JSON
    @classmethod
    def from_dict(cls, data: Any) -> Scenario:
        """Validate a parsed JSON document; ScenarioError (naming the field) if it is wrong."""
        try:
            return cls._from_dict(data)
        except ScenarioError:
            raise
        except RecursionError:
            raise ScenarioError("nested too deeply") from None

    @classmethod
    def _from_dict(cls, data: Any) -> Scenario:
        data = _object(data, "", _TOP_FIELDS, ("gdsim", "surface", "runs"))
        version = data["gdsim"]
        if isinstance(version, bool) or not isinstance(version, int | float):
            raise ScenarioError(
                f"must be the format version {FORMAT_VERSION}, got {_kind(version)}", "gdsim"
            )
        if version != FORMAT_VERSION:
            newer = " (written by a newer gdsim?)" if version > FORMAT_VERSION else ""
            raise ScenarioError(
                f"format version {version!r} is not supported{newer}; this gdsim reads"
                f" {FORMAT_VERSION}",
                "gdsim",
            )
        title = _string(data.get("title", ""), "title")
        description = _string(data.get("description", ""), "description")
        spec, surface = _surface(data["surface"])
        steps = _integer(data.get("steps", DEFAULT_STEPS), "steps", 0, MAX_STEPS)
        seed = _integer(data.get("seed", 0), "seed", 0, 2**63 - 1)
        stop = _stop(data["stop"]) if data.get("stop") is not None else None
        raw_runs = data["runs"]
        if not isinstance(raw_runs, list):
            raise ScenarioError(f"must be a list, got {_kind(raw_runs)}", "runs")
        runs = [_run(r, f"runs[{i}]", surface) for i, r in enumerate(raw_runs)]
        scenario = cls(spec, runs, steps, seed, stop, title, description)
        scenario._cache = (_copy_spec(spec), surface)
        return scenario

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (only what differs from the defaults, so files stay short)."""
        out: dict[str, Any] = {"gdsim": FORMAT_VERSION}
        if self.title:
            out["title"] = self.title
        if self.description:
            out["description"] = self.description
        out["surface"] = self.surface.to_dict()
        out["steps"] = self.steps
        out["seed"] = self.seed
        if self.stop is not None:
            stop = {k: getattr(self.stop, k) for k in _STOP_FIELDS}
            stop = {k: v for k, v in stop.items() if v is not None}
            if stop:
                out["stop"] = stop
        out["runs"] = [_run_dict(r) for r in self.runs]
        return out

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> Scenario:
        """Parse and validate JSON text; ``source`` (a file name) prefixes error messages."""
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as e:
            raise ScenarioError(
                f"not valid JSON: {e.msg}", line=e.lineno, column=e.colno, source=source
            ) from None
        except ScenarioError as e:
            raise e.with_source(source) if source else e from None
        except RecursionError:
            raise ScenarioError("not valid JSON: nested too deeply", source=source) from None
        try:
            return cls.from_dict(data)
        except ScenarioError as e:
            if source:
                raise e.with_source(source) from None
            raise

    def to_json(self) -> str:
        return _dumps(self.to_dict()) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Scenario:
        """Read a scenario file. Every failure (missing file, not UTF-8, not JSON, invalid) is
        a ScenarioError whose message starts with the file name."""
        source = os.fspath(path)
        try:
            with open(source, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise ScenarioError(f"cannot read the file: {e.strerror or e}", source=source) from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ScenarioError(
                f"not UTF-8 text (byte {e.start} cannot be decoded)", source=source
            ) from None
        return cls.from_json(text, source)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the scenario atomically: the file is the old one or the new one, never half."""
        atomic_write(path, self.to_json())

    # -------------------------------------------------------------- use
    def build_surface(self) -> Surface:
        """The engine surface (built once on load; rebuilt if the spec was edited since)."""
        if self._cache is None or self._cache[0] != self.surface:
            self._cache = (_copy_spec(self.surface), self.surface.build())
        return self._cache[1]

    def to_simulation(self) -> Simulation:
        """A fresh Simulation of this scenario (runs at their starts, step 0)."""
        return Simulation(
            self.build_surface(),
            [r.copy() for r in self.runs],
            seed=self.seed,
            stop=None if self.stop is None else replace(self.stop),
        )

    def validated(self) -> Scenario:
        """A checked copy, for a scenario edited in place: ScenarioError if an edit broke it."""
        return Scenario.from_dict(self.to_dict())


def _copy_spec(spec: SurfaceSpec) -> SurfaceSpec:
    return replace(spec, params=dict(spec.params))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ScenarioError(f"field {key!r} appears twice in one object")
        out[key] = value
    return out


def _surface(value: Any) -> tuple[SurfaceSpec, Surface]:
    data = _object(value, "surface", _SURFACE_FIELDS)
    has_name, has_formula = "name" in data, "formula" in data
    if has_name == has_formula:
        raise ScenarioError(
            "give either a built-in 'name' or a custom 'formula'"
            + (", not both" if has_name else ""),
            "surface",
        )
    box = _box(data["box"], "surface.box") if data.get("box") is not None else None
    title = _string(data["title"], "surface.title") if data.get("title") is not None else None
    if has_formula:
        if "params" in data:
            raise ScenarioError("only built-in surfaces take params", "surface.params")
        text = _string(data["formula"], "surface.formula")
        spec = SurfaceSpec(formula=text, box=box, title=title)
        try:
            return spec, spec.build()
        except ValueError as e:
            raise ScenarioError(str(e), "surface.formula") from None
    name = _choice(data["name"], "surface.name", surfaces.names(), "surface")
    specs = {p.name: p for p in surfaces.param_specs(name)}
    raw = data.get("params", {})
    if isinstance(raw, dict) and raw and not specs:
        raise ScenarioError(f"surface {name!r} takes no params", "surface.params")
    params = {
        key: float(_number(v, f"surface.params.{key}", specs[key].low, specs[key].high))
        for key, v in _object(raw, "surface.params", tuple(specs)).items()
    }
    spec = SurfaceSpec(name=name, params=dict(params), box=box, title=title)
    try:
        return spec, spec.build()
    except (ValueError, TypeError) as e:
        raise ScenarioError(str(e), "surface.params" if params else "surface") from None


def _stop(value: Any) -> StopRules | None:
    """Stop rules; None when every rule is off (so a file says the same thing either way)."""
    data = _object(value, "stop", _STOP_FIELDS)
    rules = StopRules()
    for key in ("grad_tol", "loss_tol"):
        if data.get(key) is not None:
            setattr(rules, key, float(_number(data[key], f"stop.{key}", 0.0, low_open=True)))
    if data.get("max_steps") is not None:
        rules.max_steps = _integer(data["max_steps"], "stop.max_steps", 1, MAX_STEPS)
    return None if rules == StopRules() else rules


def _run(value: Any, path: str, surface: Surface) -> RunSpec:
    data = _object(value, path, _RUN_FIELDS, ("optimizer", "start"))
    name = _choice(data["optimizer"], f"{path}.optimizer", optimizers.names(), "optimizer")
    info = optimizers.info(name)
    params = _hyper(data.get("params", {}), f"{path}.params", info.params)
    try:
        optimizers.create(name, **params)
    except ValueError as e:  # rules that tie parameters together (nesterov needs momentum)
        raise ScenarioError(str(e), f"{path}.params") from None
    label = _string(data.get("label", info.display_name), f"{path}.label")
    start = _pair(data["start"], f"{path}.start")
    schedule = None
    if data.get("schedule") is not None:
        schedule = _schedule(data["schedule"], f"{path}.schedule")
    noise = float(_number(data.get("noise", 0.0), f"{path}.noise", 0.0))
    color = None
    if data.get("color") is not None:
        color = _string(data["color"], f"{path}.color")
        if not _COLOR.fullmatch(color):
            raise ScenarioError(f"must be a colour like '#1f77b4', got {color!r}", f"{path}.color")
    visible = _bool(data.get("visible", True), f"{path}.visible")
    batch_size = None
    if data.get("batch_size") is not None:
        batch_size = _integer(data["batch_size"], f"{path}.batch_size", 1, MAX_BATCH)
    _check_start(surface, start, f"{path}.start")
    return RunSpec(label, name, params, start, schedule, noise, visible, color, batch_size)


def _schedule(value: Any, path: str) -> dict[str, Any]:
    data = _object(value, path, tuple(value) if isinstance(value, dict) else (), ("name",))
    name = _choice(data["name"], f"{path}.name", schedules.names(), "schedule")
    info = schedules.CATALOGUE[name]
    hyper = _hyper(data, path, info.params, fixed=("name",))
    try:
        schedules.create(name, **hyper)
    except ValueError as e:
        raise ScenarioError(str(e), path) from None
    return {"name": name, **hyper}


def _check_start(surface: Surface, start: tuple[float, float], path: str) -> None:
    xy = np.array([start])
    with np.errstate(all="ignore"):
        f = np.asarray(surface.value(xy), dtype=float)
        g = np.asarray(surface.gradient(xy), dtype=float)
    if not (np.isfinite(f).all() and np.isfinite(g).all()):
        raise ScenarioError(
            f"the surface (or its gradient) is not finite at ({start[0]:g}, {start[1]:g})", path
        )


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _run_dict(run: RunSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "label": run.label,
        "optimizer": run.optimizer,
        "params": {k: _plain(v) for k, v in run.params.items()},
        "start": [run.start[0], run.start[1]],
    }
    if run.schedule is not None:
        out["schedule"] = {k: _plain(v) for k, v in run.schedule.items()}
    if run.noise:
        out["noise"] = run.noise
    if run.color is not None:
        out["color"] = run.color
    if not run.visible:
        out["visible"] = False
    if run.batch_size is not None:
        out["batch_size"] = run.batch_size
    return out


def _dumps(value: Any, indent: int = 0) -> str:
    """JSON with objects one field a line and short lists on one line, as a person writes it."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict):
        if not value:
            return "{}"
        if all(not isinstance(v, dict | list) for v in value.values()) and len(value) <= 4:
            one = "{" + ", ".join(f"{_leaf(k)}: {_leaf(v)}" for k, v in value.items())
            if len(one) + indent <= 90:
                return one + "}"
        items = [f"{inner}{_leaf(k)}: {_dumps(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if all(not isinstance(v, dict) for v in value):
            return _leaf(value)
        items = [inner + _dumps(v, indent + 2) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return _leaf(value)


def _leaf(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


# ---------------------------------------------------------------------------------- shipped
@dataclass(frozen=True)
class ShippedScenario:
    """A scenario that comes with gdsim (resources/scenarios/<name>.json)."""

    name: str
    title: str
    description: str
    path: str


def _scenario_folder() -> Any:
    from gdsim.resources import resource

    return resource("scenarios")


def shipped() -> list[ShippedScenario]:
    """The example scenarios, ``default`` first, then by name; titles read from the files."""
    out = []
    for entry in _scenario_folder().iterdir():
        if not entry.name.endswith(".json"):
            continue
        name = entry.name[: -len(".json")]
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            title, description = str(data.get("title", "")), str(data.get("description", ""))
        except (OSError, ValueError, AttributeError):
            title, description = "", ""
        out.append(ShippedScenario(name, title, description, str(entry)))
    return sorted(out, key=lambda s: (s.name != "default", s.name))


def shipped_path(name: str) -> str | None:
    """The file of the shipped scenario ``name`` (without .json), or None if there is none."""
    return next((s.path for s in shipped() if s.name == name), None)
