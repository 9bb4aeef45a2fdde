"""Hyperparameter sweeps: one ball per (x, y) setting, the whole grid stepped at once.

A sweep answers "for which learning rates and momenta does this run converge, how fast, and
where does it blow up?" as a map. Every cell is the same ball (same surface, start, schedule
and noise) with its own two hyperparameters, and the cells are stepped together: the optimizer
gets its swept hyperparameters as (n, 1) arrays, so one ``update`` call and one gradient call per
step move every cell. The Python loop runs once per step, never once per cell.

Why the results are the numbers of a single run: every optimizer rule is row-wise and its
powers go through :func:`gdsim.engine.optimizers.power`, so a row of the grid gets exactly the
bits that :class:`~gdsim.engine.simulation.Simulation` computes for one ball with those
hyperparameters. Divergence is judged exactly as Simulation judges it (a position, gradient or
loss that is not finite, |f| > ``DIVERGENCE_LOSS``, or more than ``DIVERGENCE_BOX_DIAGONALS``
box diagonals outside the box); a diverged cell is frozen at its last finite state and leaves
the arrays, so no NaN ever reaches a result and the survivors run on undisturbed.

Noise: every cell sees the *same* noise stream, the one Simulation draws for run ``stream``
(``default_rng([seed, stream])``). Common random numbers make neighbouring cells differ by
their hyperparameters, not by their luck, and make a cell reproduce that run exactly.

Schedules scale each cell's own base learning rate, as they would for a run with that lr.
A sweep has no stop rules: every cell takes all its steps unless it diverges, and
``steps_to_tol`` is how convergence is measured (a scenario's ``stop`` rules are not applied).

Axes are written ``name=low:high:count`` (linear) or ``name=low:high:log:count`` (geometric).
The names are the optimizer's numeric hyperparameters (torch's names), and ``beta1``/``beta2``
for the two halves of ``betas``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gdsim.engine import nn as _nn
from gdsim.engine import optimizers as _optimizers
from gdsim.engine import schedules as _schedules
from gdsim.engine.simulation import DIVERGENCE_BOX_DIAGONALS, DIVERGENCE_LOSS

if TYPE_CHECKING:
    from gdsim.engine.surfaces import Surface

__all__ = [
    "DEFAULT_TOL",
    "MAX_AXIS_VALUES",
    "MAX_CELLS",
    "METRICS",
    "Axis",
    "SweepResult",
    "axis_names",
    "parse_axis",
    "sweep",
]

#: Most cells a sweep may have: 4 million cells of Adam hold ~0.4 GB of state when stepped at
#: once, and are stepped in blocks of ``_BLOCK_CELLS`` anyway; beyond this a map has more cells
#: than a screen has pixels.
MAX_CELLS = 4_000_000
#: Most values on one axis.
MAX_AXIS_VALUES = 100_000
#: Default tolerance of ``steps_to_tol``.
DEFAULT_TOL = 1e-6
#: What a sweep measures per cell.
METRICS = ("final_loss", "steps_to_tol", "diverged")

# Cells stepped together: bounds the memory of one block (state, gradients, masks) to tens of MB.
_BLOCK_CELLS = 1 << 17
# Steps of schedule learning rates and noise prepared at once.
_TIME_CHUNK = 1024
# Split "betas" into two sweepable names.
_PAIR_NAMES = {"betas": ("beta1", "beta2")}
_AXIS = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*")


@dataclass(frozen=True)
class Axis:
    """One axis of the grid: a hyperparameter name and its values (increasing).

    ``log`` says the values are geometric (drawn on a log axis). Build one with
    :func:`parse_axis` or directly, e.g. ``Axis("lr", np.geomspace(1e-4, 1, 100), log=True)``.
    """

    name: str
    values: np.ndarray
    log: bool = False

    def __post_init__(self) -> None:
        try:
            v = np.array(self.values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"axis {self.name}: values must be numbers") from None
        if v.size == 0:
            raise ValueError(f"axis {self.name}: needs at least one value")
        if v.size > MAX_AXIS_VALUES:
            raise ValueError(
                f"axis {self.name}: {v.size} values is too many (at most {MAX_AXIS_VALUES})"
            )
        if not np.isfinite(v).all():
            raise ValueError(f"axis {self.name}: values must be finite numbers")
        if v.size > 1 and not (np.diff(v) > 0).all():
            raise ValueError(f"axis {self.name}: values must increase")
        if self.log and not (v > 0).all():
            raise ValueError(f"axis {self.name}: a log axis needs values > 0, got {v.min()!r}")
        v.flags.writeable = False
        object.__setattr__(self, "values", v)


def parse_axis(text: str) -> Axis:
    """``"lr=1e-4:1:log:100"`` -> 100 geometric values; ``"momentum=0:0.99:100"`` -> linear.

    The ends are exact (the first value is ``low``, the last ``high``). Raises ValueError naming
    the problem: the form, a number that is not one, ``low >= high``, a log range that is not
    positive, a count below 2 or above ``MAX_AXIS_VALUES``.
    """
    form = "NAME=LOW:HIGH:COUNT or NAME=LOW:HIGH:log:COUNT"
    m = _AXIS.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r}: expected {form}, e.g. lr=1e-4:1:log:100")
    name, parts = m.group(1), [p.strip() for p in m.group(2).split(":")]
    log = len(parts) == 4 and parts[2].lower() == "log"
    if len(parts) == 4 and not log:
        raise ValueError(f"{text!r}: the third field may only be 'log' ({form})")
    if len(parts) not in (3, 4):
        raise ValueError(f"{text!r}: expected {form}")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"{text!r}: LOW and HIGH must be numbers") from None
    try:
        count = int(parts[-1])
    except ValueError:
        raise ValueError(f"{text!r}: COUNT must be an integer, got {parts[-1]!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{text!r}: LOW and HIGH must be finite")
    if not low < high:
        raise ValueError(f"{text!r}: LOW must be below HIGH, got {low!r} >= {high!r}")
    if not 2 <= count <= MAX_AXIS_VALUES:
        raise ValueError(f"{text!r}: COUNT must be in [2, {MAX_AXIS_VALUES}], got {count}")
    if log:
        if low <= 0:
            raise ValueError(f"{text!r}: a log axis needs LOW > 0, got {low!r}")
        values = np.geomspace(low, high, count)
    else:
        values = np.linspace(low, high, count)
    values[0], values[-1] = low, high
    return Axis(name, values, log)


@dataclass(frozen=True)
class SweepResult:
    """What happened in every cell. Arrays are (ny, nx): row ``i`` is ``y.values[i]``, column
    ``j`` is ``x.values[j]``. All arrays are read-only.

    - ``final_loss``: f at the final state (after ``steps`` steps, or the last finite state of a
      cell that diverged). Never NaN.
    - ``final_position``: (ny, nx, 2), the same state's position.
    - ``steps_to_tol``: the first step count k after which f − f* < tol (f* the surface's
      lowest known minimum), or |∇f| < tol where the surface has no known minimum; 0 if the
      start already does; ``inf`` if never. Float, so that ``inf`` fits.
    - ``diverged``: bool; ``diverged_at``: the step that diverged (its state is not kept),
      -1 where the cell did not diverge.
    """

    x: Axis
    y: Axis
    optimizer: str
    params: dict[str, Any]
    start: tuple[float, float]
    steps: int
    tol: float
    tol_kind: str  # "loss" (f − f* < tol) or "grad" (|∇f| < tol)
    f_star: float | None
    final_loss: np.ndarray
    final_position: np.ndarray
    steps_to_tol: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.y.values.size, self.x.values.size)

    def metric(self, name: str) -> np.ndarray:
        """One of METRICS by name (``diverged`` as bool)."""
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRICS)}")
        return getattr(self, name)

    def base_value(self, axis: Axis) -> float | None:
        """The value the swept run itself has for an axis' hyperparameter (its defaults
        filled in), to mark "you are here" on a map; None if it is not a number."""
        return _base_value(self.optimizer, self.params, axis.name)


def axis_names(optimizer: str) -> list[str]:
    """The hyperparameters of ``optimizer`` that can be an axis (numbers; pairs split)."""
    out = []
    for p in _optimizers.info(optimizer).params:
        if p.kind == "float":
            out.append(p.name)
        elif p.kind == "pair" and p.name in _PAIR_NAMES:
            out.extend(_PAIR_NAMES[p.name])
    return out


def _spec_for(optimizer: str, name: str) -> tuple[_optimizers.HyperParam, str, int | None]:
    """(declaration, torch name, index in a pair or None) for an axis name."""
    params = {p.name: p for p in _optimizers.info(optimizer).params}
    for pair, halves in _PAIR_NAMES.items():
        if name in halves and pair in params:
            return params[pair], pair, halves.index(name)
    p = params.get(name)
    if p is None or p.kind not in ("float", "pair"):
        what = "is a flag, not a number" if p is not None else "is not one of its hyperparameters"
        raise ValueError(
            f"cannot sweep {name!r}: for {optimizer} it {what}; "
            f"valid axes: {', '.join(axis_names(optimizer))}"
        )
    if p.kind == "pair":
        raise ValueError(
            f"cannot sweep the pair {name!r}; sweep its halves: "
            f"{', '.join(_PAIR_NAMES.get(name, ()))}"
        )
    return p, name, None


def _base_value(optimizer: str, params: Mapping[str, Any], name: str) -> float | None:
    try:
        p, key, index = _spec_for(optimizer, name)
    except ValueError:
        return None
    value = params.get(key, p.default)
    if index is not None:
        value = value[index]  # type: ignore[index]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _check_axis_values(optimizer: str, axis: Axis, which: str) -> None:
    p, _, _ = _spec_for(optimizer, axis.name)
    v = axis.values
    ok = np.ones(v.shape, dtype=bool) if p.high is not None else np.isfinite(v)
    if p.low is not None:
        ok &= (v > p.low) if p.low_open else (v >= p.low)
    if p.high is not None:
        ok &= (v < p.high) if p.high_open else (v <= p.high)
    if not ok.all():
        bad = float(v[~ok][0])
        raise ValueError(
            f"{which} axis {axis.name}: values must be {_optimizers.range_text(p)} "
            f"for {optimizer}, got {bad!r}"
        )


def _grid_hyper(
    optimizer: str, params: Mapping[str, Any], x: Axis, y: Axis, rows: slice
) -> dict[str, Any]:
    """The optimizer's keywords for cells ``rows`` of the flattened (ny, nx) grid."""
    nx = x.values.size
    cells = np.arange(rows.start, rows.stop)
    columns = {
        x.name: x.values[cells % nx].reshape(-1, 1),
        y.name: y.values[cells // nx].reshape(-1, 1),
    }
    hyper = dict(params)
    for name, column in columns.items():
        p, key, index = _spec_for(optimizer, name)
        if index is None:
            hyper[key] = column
        else:
            pair = list(hyper.get(key, p.default))  # type: ignore[arg-type]
            pair[index] = column
            hyper[key] = tuple(pair)
    return hyper


def _check_int(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {value!r}")
    return int(value)


def sweep(
    surface: Surface,
    optimizer: str,
    params: Mapping[str, Any],
    start: Sequence[float],
    x: Axis,
    y: Axis,
    *,
    steps: int,
    schedule: Mapping[str, Any] | None = None,
    noise: float = 0.0,
    seed: int = 0,
    stream: int = 0,
    tol: float = DEFAULT_TOL,
    batch_size: int | None = None,
) -> SweepResult:
    """Run ``optimizer`` from ``start`` for ``steps`` steps at every (x, y) setting at once.

    ``params`` are the run's own hyperparameters (torch's names); the two axes override theirs.
    ``schedule`` is ``{"name": ..., **parameters}`` as in a RunSpec; ``noise`` the standard
    deviation of gradient noise, drawn from ``default_rng([seed, stream])`` as Simulation draws
    it for run index ``stream``. ``batch_size`` (on a surface with data) makes every cell
    descend the same real mini-batches, the stream Simulation draws for that run (see
    nn.BatchStream), so a cell plays out exactly as the run with its settings would; None, or
    a surface without data, is the exact gradient. Raises ValueError naming the problem for an
    unknown optimizer or hyperparameter, an axis swept twice, values outside a hyperparameter's
    range, too many cells (``MAX_CELLS``), or a start where f is not finite.
    """
    if not isinstance(x, Axis) or not isinstance(y, Axis):
        raise TypeError("x and y must be Axis objects (see parse_axis)")
    steps = _check_int(steps, "steps", 0)
    seed = _check_int(seed, "seed", 0)
    stream = _check_int(stream, "stream", 0)
    tol = float(tol)
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    noise = float(noise)
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    if batch_size is not None:
        batch_size = _check_int(batch_size, "batch_size", 1)
    info = _optimizers.info(optimizer)
    params = dict(params)
    for which, axis in (("x", x), ("y", y)):
        _check_axis_values(optimizer, axis, which)
    if x.name == y.name:
        raise ValueError(f"x and y both sweep {x.name!r}; choose two different hyperparameters")
    nx, ny = x.values.size, y.values.size
    if nx * ny > MAX_CELLS:
        raise ValueError(
            f"{nx} x {ny} = {nx * ny} cells is too many (at most {MAX_CELLS:,}); use fewer values"
        )
    # Base settings and every combination of flags are checked once, up front (e.g. nesterov
    # with a momentum axis that includes 0): a block never fails half-way.
    _optimizers.create(optimizer, **_grid_hyper(optimizer, params, x, y, slice(0, nx * ny)))
    sched = None
    if schedule is not None:
        spec = dict(schedule)
        if "name" not in spec:
            raise ValueError("schedule needs a 'name'")
        sched = _schedules.create(str(spec.pop("name")), **spec)
    sx, sy = (float(v) for v in start)
    xy = np.array([[sx, sy]])
    with np.errstate(all="ignore"):
        f0 = float(np.asarray(surface.value(xy), dtype=float).reshape(-1)[0])
        g0 = np.asarray(surface.gradient(xy), dtype=float).reshape(2)
    if not (math.isfinite(f0) and np.isfinite(g0).all()):
        raise ValueError(f"the surface is not finite at the start ({sx:g}, {sy:g})")

    minima = np.asarray(surface.minima_values, dtype=float).reshape(-1)
    f_star = float(minima.min()) if minima.size else None
    (x0, x1), (y0, y1) = surface.box
    margin = DIVERGENCE_BOX_DIAGONALS * math.hypot(x1 - x0, y1 - y0)
    lo = np.array([min(x0, x1) - margin, min(y0, y1) - margin])
    hi = np.array([max(x0, x1) + margin, max(y0, y1) + margin])

    n = nx * ny
    out_loss = np.empty(n)
    out_pos = np.empty((n, 2))
    out_tol = np.full(n, np.inf)
    out_at = np.full(n, -1, dtype=np.int64)
    ctx = _Context(
        surface, info, params, x, y, steps, sched, noise, seed, stream, tol, f_star, lo, hi,
        batch_size,
    )  # fmt: skip
    with np.errstate(all="ignore"):
        for a in range(0, n, _BLOCK_CELLS):
            b = min(n, a + _BLOCK_CELLS)
            _run_block(ctx, a, b, xy, f0, g0, out_loss, out_pos, out_tol, out_at)

    def shaped(arr: np.ndarray, *tail: int) -> np.ndarray:
        arr = arr.reshape(ny, nx, *tail)
        arr.flags.writeable = False
        return arr

    diverged = out_at >= 0
    return SweepResult(
        x=x,
        y=y,
        optimizer=optimizer,
        params=params,
        start=(sx, sy),
        steps=steps,
        tol=tol,
        tol_kind="grad" if f_star is None else "loss",
        f_star=f_star,
        final_loss=shaped(out_loss),
        final_position=shaped(out_pos, 2),
        steps_to_tol=shaped(out_tol),
        diverged=shaped(diverged),
        diverged_at=shaped(out_at),
    )


@dataclass
class _Context:
    surface: Any
    info: _optimizers.OptimizerInfo
    params: dict[str, Any]
    x: Axis
    y: Axis
    steps: int
    schedule: Any
    noise: float
    seed: int
    stream: int
    tol: float
    f_star: float | None
    lo: np.ndarray
    hi: np.ndarray
    batch_size: int | None = None


def _lr_table(ctx: _Context, base: np.ndarray, t0: int, t1: int) -> np.ndarray:
    """Learning rates of steps t0..t1-1 for each distinct base lr: (n_bases, t1 - t0).

    Each row is computed as Simulation computes one run's (``lr_at(base, steps)`` with a Python
    float base and an array of step counts), so the numbers are the same bits.
    """
    ticks = np.arange(t0, t1, dtype=np.float64)
    table = np.empty((base.size, t1 - t0))
    for k, b in enumerate(base.tolist()):
        table[k] = np.broadcast_to(
            np.asarray(ctx.schedule.lr_at(b, ticks), dtype=float), ticks.shape
        )
    return table


def _run_block(
    ctx: _Context,
    a: int,
    b: int,
    xy: np.ndarray,
    f0: float,
    g0: np.ndarray,
    out_loss: np.ndarray,
    out_pos: np.ndarray,
    out_tol: np.ndarray,
    out_at: np.ndarray,
) -> None:
    """Step cells a..b-1 of the grid to the end and write their results."""
    surface, name = ctx.surface, ctx.info.name
    hyper = _grid_hyper(name, ctx.params, ctx.x, ctx.y, slice(a, b))
    opt = _optimizers.create(name, **hyper)
    needs_h = bool(ctx.info.needs_hessian)
    m = b - a
    idx = np.arange(a, b)  # grid cell of each active row
    theta = np.repeat(xy, m, axis=0)
    grad = np.repeat(g0[None], m, axis=0)
    loss = np.full(m, f0)
    state = opt.init(theta.copy())
    by_loss = ctx.f_star is not None
    reached = (f0 - ctx.f_star < ctx.tol) if by_loss else (math.hypot(*g0) < ctx.tol)
    if reached:
        out_tol[a:b] = 0.0
    waiting = np.full(m, not reached)  # rows that have not met the tolerance yet

    # Schedules: per row, an index into the distinct base learning rates.
    lr_base = lr_inverse = None
    if ctx.schedule is not None:
        base = np.asarray(opt.hyper.get("lr", _default(ctx.info, "lr")), dtype=float)
        base = np.broadcast_to(base.reshape(-1, 1), (m, 1))[:, 0]
        lr_base, lr_inverse = np.unique(base, return_inverse=True)
    rng = np.random.default_rng([ctx.seed, ctx.stream]) if ctx.noise > 0 else None
    data = getattr(surface, "data", None)
    batches = None
    if data is not None and ctx.batch_size is not None and ctx.batch_size < data.m:
        batches = _nn.BatchStream(data.m, ctx.batch_size, ctx.seed, ctx.stream)

    t = 0
    while t < ctx.steps and idx.size:
        t1 = min(ctx.steps, t + _TIME_CHUNK)
        table = None if lr_base is None else _lr_table(ctx, lr_base, t, t1)
        noise = None if rng is None else ctx.noise * rng.standard_normal((t1 - t, 2))
        for k in range(t1 - t):
            if batches is None:
                g = grad if noise is None else grad + noise[k]
            else:  # every cell descends this step's mini-batch; grad stays the true one
                g = data.gradient(theta, batches.current())
                g = g if noise is None else g + noise[k]
                batches.advance()
            kw: dict[str, Any] = {}
            if table is not None:
                kw["lr"] = table[lr_inverse, k].reshape(-1, 1)
            if needs_h:
                kw["hessian"] = surface.hessian(theta)
            delta, state = opt.update(g, state, theta, **kw)
            new = theta + delta
            grad = np.asarray(surface.gradient(new), dtype=float)
            new_loss = np.asarray(surface.value(new), dtype=float).reshape(-1)
            step = t + k + 1
            # Simulation's rule: in the (huge) box, |f| <= DIVERGENCE_LOSS, gradient finite.
            ok = ((ctx.lo <= new) & (new <= ctx.hi)).all(axis=1)
            ok &= np.abs(new_loss) <= DIVERGENCE_LOSS
            ok &= np.isfinite(grad).all(axis=1)
            if by_loss:
                hit = new_loss - ctx.f_star < ctx.tol
            else:
                hit = np.hypot(grad[:, 0], grad[:, 1]) < ctx.tol
            hit &= waiting & ok
            if hit.any():
                out_tol[idx[hit]] = step
                waiting &= ~hit
            if not ok.all():
                dead = ~ok
                cells = idx[dead]
                out_at[cells] = step
                out_loss[cells] = loss[dead]
                out_pos[cells] = theta[dead]
                keep = np.flatnonzero(ok)
                idx, new, grad, new_loss, waiting = (
                    idx[keep], new[keep], grad[keep], new_loss[keep], waiting[keep]
                )  # fmt: skip
                if lr_inverse is not None:
                    lr_inverse = lr_inverse[keep]
                if not idx.size:
                    break
                state = type(state)(*(f[keep] for f in state))
                opt = _optimizers.create(name, **_take(opt.hyper, keep))
            theta, loss = new, new_loss
        t = t1
    out_loss[idx] = loss
    out_pos[idx] = theta


def _default(info: _optimizers.OptimizerInfo, name: str) -> Any:
    return next((p.default for p in info.params if p.name == name), 0.0)


def _take(hyper: Mapping[str, Any], keep: np.ndarray) -> dict[str, Any]:
    """Hyperparameters restricted to rows ``keep`` (scalars stay scalars)."""

    def take(v: Any) -> Any:
        if isinstance(v, tuple):
            return tuple(take(e) for e in v)
        if isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] > 1:
            return v[keep]
        return v

    return {k: take(v) for k, v in hyper.items()}
