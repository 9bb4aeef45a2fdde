"""Many balls, many optimizers, one surface: the engine the window and the command line share.

Why it is shaped like this:

* **Vectorised per optimizer.** Runs with the same optimizer (and the same on/off flags) form a
  group whose hyperparameters are stacked into ``(n, 1)`` arrays, so one ``update`` call moves
  all of them. All running balls sit in one ``(n, 2)`` array, so the surface gradient is one call
  per step for everything. A Python-level loop runs once per step, not once per ball.
* **Checks after the fact.** Divergence and the stop rules are tested once per chunk of steps,
  on whole arrays, and a run that tripped one is cut back to the exact step where it did. Every
  operation is row-wise, so the rows a stopped run kept computing (NaN or not) never touch the
  others: the result is the same as checking after every step, at a fraction of the cost.
* **Deterministic.** Gradient noise for a run comes from its own generator seeded from
  ``(seed, run id)``, drawn in step order, so its stream never depends on the other runs, their
  grouping, or how ``step`` calls were batched. Same scenario and seed, same bits.
* **History that never holds a NaN.** Per run, preallocated arrays that double when full.
  Row ``k`` is the state after ``k`` steps (row 0 is the start): position, loss, the true
  (noise-free) gradient there, and the learning rate the step *from* there uses.
* **Real mini-batches.** On a surface with data (the neural-network surfaces) a run with a
  ``batch_size`` descends the loss of a mini-batch each step, drawn like PyTorch's
  ``DataLoader(shuffle=True)`` from the run's own generator (seeded from ``(seed, run id)`` but
  separate from the noise generator), so batches too never depend on other runs or chunking.
* **Live edits.** The desktop app changes hyperparameters, optimizers, starts and the surface
  while balls roll; every edit leaves the simulation in a state a straight optimizer loop could
  have reached.

Not thread-safe: one thread (the worker) owns a Simulation. The one exception is reading
history (``history``/``history_since``) while ``step`` appends, which is safe: rows are written
before the row count that makes them visible is raised.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from gdsim.engine import nn as _nn
from gdsim.engine import optimizers as _optimizers
from gdsim.engine import schedules as _schedules

if TYPE_CHECKING:
    from gdsim.engine.surfaces import Surface

__all__ = [
    "DIVERGENCE_BOX_DIAGONALS",
    "DIVERGENCE_LOSS",
    "Frame",
    "RunHistory",
    "RunSpec",
    "RunState",
    "Simulation",
    "Status",
    "StopRules",
]

#: A run whose |loss| exceeds this has diverged (no surface we ship reaches it honestly).
DIVERGENCE_LOSS = 1e100
#: A run farther than this many box diagonals outside the surface's box has diverged.
DIVERGENCE_BOX_DIAGONALS = 1e3

# Steps per chunk between checks; also bounded so a chunk's buffers stay small for many balls.
_CHUNK_STEPS = 2048
_CHUNK_CELLS = 1 << 17
# State fields that hold a momentum / first-moment buffer, in order of preference.
_VELOCITY_FIELDS = ("momentum_buffer", "exp_avg", "momentum", "m", "velocity")


@dataclass
class RunSpec:
    """One ball: which optimizer, with which settings, from where.

    ``params`` are torch.optim constructor arguments (``lr``, ``momentum``, ``betas``...).
    ``schedule`` is ``{"name": ..., **its parameters}`` or None for a constant learning rate.
    ``noise`` is the standard deviation of Gaussian noise added to each gradient component, a
    stand-in for mini-batch noise. ``visible`` and ``color`` are hints for views only.
    ``batch_size`` is the mini-batch size on a surface with data (None = the full batch, the
    exact gradient; a size >= the number of points is the full batch too). On a surface without
    data it has no effect: a formula has no points to sample.
    """

    label: str
    optimizer: str
    params: dict[str, Any]
    start: tuple[float, float]
    schedule: dict[str, Any] | None = None
    noise: float = 0.0
    visible: bool = True
    color: str | None = None
    batch_size: int | None = None

    def copy(self) -> RunSpec:
        """A deep-enough copy: the dicts are new, so edits to it never reach a simulation."""
        return replace(
            self,
            params=dict(self.params),
            start=(float(self.start[0]), float(self.start[1])),
            schedule=None if self.schedule is None else dict(self.schedule),
        )


@dataclass
class StopRules:
    """When a run counts as done (marked CONVERGED). None switches a rule off.

    ``grad_tol``: the true gradient's norm is at most this. ``loss_tol``: the loss changed by at
    most this in one step. ``max_steps``: the run has taken this many steps (a budget).
    """

    max_steps: int | None = None
    grad_tol: float | None = None
    loss_tol: float | None = None


class Status(StrEnum):
    """Where a run stands. A stopped run (converged or diverged) stays put until reset."""

    RUNNING = "running"
    CONVERGED = "converged"
    DIVERGED = "diverged"


class Frame(NamedTuple):
    """An immutable snapshot for views: every array is a read-only copy, indexed by run."""

    step: np.ndarray  # (n_runs,) int: steps taken by each run
    positions: np.ndarray  # (n_runs, 2)
    losses: np.ndarray  # (n_runs,)
    gradients: np.ndarray  # (n_runs, 2) true gradient at the position
    lrs: np.ndarray  # (n_runs,) learning rate the next step uses
    deltas: np.ndarray  # (n_runs, 2) the last step taken (zeros before the first)
    status: tuple[Status, ...]
    stopped_at: np.ndarray  # (n_runs,) int, -1 while running
    velocities: np.ndarray  # (n_runs, 2) momentum / first-moment buffer, zeros if none
    reasons: tuple[str | None, ...]  # why a run stopped: "grad_tol", "loss_tol", "max_steps",
    #                                   "non-finite", "out of bounds", "loss too large"; or None
    # per run, the data indices of the mini-batch its next step uses (read-only); None for the
    # full batch, a surface without data, or a run that has stopped
    batches: tuple[np.ndarray | None, ...] = ()


class RunHistory(NamedTuple):
    """Rows ``first ..`` of one run's history (read-only copies); row k = after k steps."""

    positions: np.ndarray  # (m, 2)
    losses: np.ndarray  # (m,)
    gradients: np.ndarray  # (m, 2)
    lrs: np.ndarray  # (m,) learning rate the step from that row uses
    first: int  # the step index of row 0 of these arrays


class RunState(NamedTuple):
    """What one run's *next* step will use, for explaining it (``Simulation.run_state``).

    ``state`` is the run's own optimizer state rows (copies), None once the run has stopped.
    ``gradient`` = ``true_gradient`` (or, for a mini-batch run, ``batch_gradient``) + ``noise``:
    exactly the vector the next ``step`` hands to the optimizer. ``hessian`` (2, 2) only for
    optimizers that need it (Newton). ``batch`` holds the data indices of the mini-batch the
    next step descends (None for the full batch or a surface without data).
    """

    index: int
    optimizer: str
    params: dict[str, Any]
    state: Any
    position: np.ndarray  # (2,)
    true_gradient: np.ndarray  # (2,) noise-free gradient at the position
    noise: np.ndarray  # (2,) this step's gradient noise (zeros without noise)
    gradient: np.ndarray  # (2,) the gradient the next step uses
    lr: float  # the learning rate the next step uses (schedules included)
    steps: int  # steps taken so far
    status: Status
    hessian: np.ndarray | None
    batch: np.ndarray | None = None  # (k,) data indices of the next mini-batch
    batch_gradient: np.ndarray | None = None  # (2,) the loss gradient over that batch


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=a.dtype, copy=True)
    a.flags.writeable = False
    return a


class _History:
    """Growable per-run arrays; ``n`` rows are valid. Capacity doubles so appends are O(1)."""

    __slots__ = ("grad", "loss", "lr", "n", "pos")

    def __init__(self, capacity: int = 64) -> None:
        self.pos = np.empty((capacity, 2))
        self.loss = np.empty(capacity)
        self.grad = np.empty((capacity, 2))
        self.lr = np.empty(capacity)
        self.n = 0

    def restart(self, pos: np.ndarray, loss: float, grad: np.ndarray, lr: float) -> None:
        self.n = 0
        self.append(pos[None], np.array([loss]), grad[None], np.array([lr]))

    def append(self, pos: np.ndarray, loss: np.ndarray, grad: np.ndarray, lr: np.ndarray) -> None:
        n, k = self.n, len(loss)
        if n + k > len(self.loss):
            cap = max(2 * len(self.loss), n + k)
            for name in ("pos", "loss", "grad", "lr"):
                old = getattr(self, name)
                new = np.empty((cap, *old.shape[1:]))
                new[:n] = old[:n]
                setattr(self, name, new)
        self.pos[n : n + k] = pos
        self.loss[n : n + k] = loss
        self.grad[n : n + k] = grad
        self.lr[n : n + k] = lr
        self.n = n + k  # last: a reader on another thread sees complete rows only


class _Run:
    """Everything the simulation keeps for one ball (internal)."""

    __slots__ = (
        "batches",
        "delta",
        "hist",
        "opt",
        "reason",
        "rng",
        "sched_origin",
        "schedule",
        "spec",
        "state",
        "status",
        "stopped_at",
        "uid",
    )

    def __init__(self, spec: RunSpec, uid: int) -> None:
        self.spec = spec
        self.uid = uid
        self.opt: _optimizers.Optimizer = _optimizers.create(spec.optimizer, **spec.params)
        self.schedule = _make_schedule(spec.schedule)
        self.hist = _History()
        self.rng: np.random.Generator | None = None
        self.batches: _nn.BatchStream | None = None
        self.state: Any = None
        self.status = Status.RUNNING
        self.stopped_at = -1
        self.reason: str | None = None
        self.sched_origin = 0
        self.delta = np.zeros(2)

    @property
    def steps(self) -> int:
        return self.hist.n - 1

    def base_lr(self) -> float:
        lr = self.opt.hyper.get("lr")
        if lr is None:
            lr = next((p.default for p in self.opt.info.params if p.name == "lr"), 0.0)
        return float(lr)  # type: ignore[arg-type]

    def lr_at(self, steps: np.ndarray | int) -> np.ndarray:
        """Learning rate for the step taken from history row(s) ``steps``."""
        base = self.base_lr()
        k = np.asarray(steps, dtype=float) - self.sched_origin
        if self.schedule is None:
            return np.full(np.shape(k), base)
        return np.broadcast_to(np.asarray(self.schedule.lr_at(base, k), dtype=float), k.shape)


def _make_schedule(spec: dict[str, Any] | None) -> Any:
    if spec is None:
        return None
    if "name" not in spec:
        raise ValueError("schedule needs a 'name' (one of: " + ", ".join(_schedules.names()) + ")")
    hyper = {k: v for k, v in spec.items() if k != "name"}
    return _schedules.create(str(spec["name"]), **hyper)


def _check_spec(spec: RunSpec) -> RunSpec:
    if not isinstance(spec, RunSpec):
        raise TypeError(f"expected a RunSpec, got {type(spec).__name__}")
    spec = spec.copy()
    x, y = spec.start
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"start must be two finite numbers, got {spec.start!r}")
    noise = float(spec.noise)
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {spec.noise!r}")
    spec.noise = noise
    k = spec.batch_size
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(
                f"batch_size must be an integer >= 1 (or None for the full batch), got {k!r}"
            )
        spec.batch_size = int(k)
    return spec


def _check_stop(stop: StopRules | None) -> StopRules:
    stop = StopRules() if stop is None else replace(stop)
    steps = stop.max_steps
    if steps is not None and (isinstance(steps, bool) or int(steps) != steps or steps < 1):
        raise ValueError(f"max_steps must be an integer >= 1, got {stop.max_steps!r}")
    for name in ("grad_tol", "loss_tol"):
        value = getattr(stop, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return stop


def _split_state(state: Any, rows: int) -> list[Any]:
    """Row-wise pieces of a state NamedTuple (every field has leading dim n by contract)."""
    cls = type(state)
    return [cls(*(f[j : j + 1] for f in state)) for j in range(rows)]


def _join_states(states: Sequence[Any]) -> Any:
    cls = type(states[0])
    if len(states) == 1:
        return states[0]
    return cls(*(np.concatenate(fs, axis=0) for fs in zip(*states, strict=True)))


class _Group:
    """Running balls that share an optimizer: one ``update`` call per step moves them all.

    Hyperparameters that differ between members are stacked into (m, 1) arrays (bool flags
    too, and each element of a pair); the optimizers take every branch row-wise, so a ball
    moves exactly as it would alone.
    """

    __slots__ = ("a", "b", "members", "needs_hessian", "opt", "scheduled", "state")

    def __init__(self, members: list[int], runs: list[_Run], a: int) -> None:
        self.members = members
        self.a, self.b = a, a + len(members)
        first = runs[members[0]].opt
        hypers = [runs[i].opt.hyper for i in members]
        stacked = {name: _stack([h[name] for h in hypers]) for name in hypers[0]}
        self.opt = _optimizers.create(first.info.name, **stacked) if len(members) > 1 else first
        self.needs_hessian = bool(first.info.needs_hessian)
        self.scheduled = any(runs[i].schedule is not None for i in members)
        self.state = _join_states([runs[i].state for i in members])


def _stack(values: list[Any]) -> Any:
    """One hyperparameter across a group: the value itself if all agree, else an (m, 1) array."""
    first = values[0]
    if isinstance(first, tuple):
        return tuple(_stack([v[k] for v in values]) for k in range(len(first)))
    if all(_same(v, first) for v in values):
        return first
    dtype = bool if isinstance(first, bool | np.bool_) else float
    return np.array(values, dtype=dtype).reshape(-1, 1)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a.hex() == b.hex()  # 0.0 and -0.0 differ in bits, so they must not be merged
    return bool(type(a) is type(b) and a == b)


def _velocities(state: Any, opt: _optimizers.Optimizer, n: int) -> np.ndarray:
    """The momentum / first-moment buffer rows of a state, zeros where there is none."""
    fields = getattr(state, "_fields", ())
    name = next((f for f in _VELOCITY_FIELDS if f in fields), None)
    if name is None:
        return np.zeros((n, 2))
    v = np.array(getattr(state, name), dtype=float).reshape(n, -1)[:, :2]
    momentum = opt.hyper.get("momentum")
    if momentum is not None and name == "momentum_buffer":
        # torch keeps no buffer while momentum is 0; whatever the state holds is not one
        v = np.where(np.broadcast_to(np.asarray(momentum) == 0, (n, 1)), 0.0, v)
    return v


class Simulation:
    """Steps every running ball on one surface and remembers where each has been."""

    def __init__(
        self,
        surface: Surface,
        runs: Sequence[RunSpec] = (),
        seed: int = 0,
        stop: StopRules | None = None,
    ) -> None:
        if isinstance(seed, bool) or int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self._seed = int(seed)
        self._stop = _check_stop(stop)
        self._surface = surface
        self._set_bounds(surface)
        self._runs: list[_Run] = []
        self._next_uid = 0
        self._groups: list[_Group] | None = None
        for spec in runs:
            self.add_run(spec)

    # ------------------------------------------------------------------ read-only views
    @property
    def surface(self) -> Surface:
        return self._surface

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def stop(self) -> StopRules:
        return replace(self._stop)

    @property
    def n_runs(self) -> int:
        return len(self._runs)

    @property
    def runs(self) -> tuple[RunSpec, ...]:
        """Copies of the current run specs (live edits included)."""
        return tuple(r.spec.copy() for r in self._runs)

    def status(self, i: int) -> Status:
        return self._run(i).status

    def stopped_at(self, i: int) -> int:
        """The step at which run ``i`` converged or diverged; -1 while it runs.

        A run that diverged at step k keeps rows 0..k-1 (the last finite ones); a run that
        converged at step k keeps rows 0..k.
        """
        return self._run(i).stopped_at

    def stop_reason(self, i: int) -> str | None:
        return self._run(i).reason

    def steps_taken(self, i: int) -> int:
        return self._run(i).steps

    def statuses(self) -> tuple[Status, ...]:
        """Every run's status, in run order."""
        return tuple(r.status for r in self._runs)

    def history(self, i: int) -> RunHistory:
        """Run ``i``'s whole history, step 0 (the start) included."""
        return self.history_since(i, 0)

    def history_since(self, i: int, k: int) -> RunHistory:
        """Rows ``k`` onwards of run ``i``'s history: what a view drawing a trail needs to fetch.

        ``k`` past the end gives empty arrays. Cost is proportional to the rows returned.
        """
        h = self._run(i).hist
        n = h.n  # read first: rows below n are complete even if step() is appending
        pos, loss, grad, lr = h.pos, h.loss, h.grad, h.lr
        k = min(max(int(k), 0), n)
        return RunHistory(
            _readonly(pos[k:n]), _readonly(loss[k:n]), _readonly(grad[k:n]), _readonly(lr[k:n]), k
        )

    def run_state(self, i: int) -> RunState:
        """Run ``i``'s next step as the engine will take it, without taking it.

        The optimizer state is the run's own rows even while it is grouped with others; the
        noise is peeked from a copy of the run's generator, so stepping afterwards draws the
        very same numbers. Read-only: nothing of the simulation changes.
        """
        r = self._run(i)
        index = i % len(self._runs)
        last = r.hist.n - 1
        pos = r.hist.pos[last].copy()
        true_grad, noise, batch, batch_grad = self._next_gradient(r)
        hessian = None
        if r.opt.info.needs_hessian:
            with np.errstate(all="ignore"):
                hessian = np.asarray(self._surface.hessian(pos[None]), dtype=float).reshape(2, 2)
        return RunState(
            index,
            r.spec.optimizer,
            dict(r.spec.params),
            self._own_state(index),
            pos,
            true_grad,
            noise,
            (true_grad if batch_grad is None else batch_grad) + noise,
            float(r.hist.lr[last]),
            r.steps,
            r.status,
            hessian,
            batch,
            batch_grad,
        )

    def optimizer_state(self, i: int) -> Any:
        """Copies of run ``i``'s own optimizer state rows (None once it has stopped): cheaper
        than ``run_state`` when only the state is wanted (per-axis internals every frame)."""
        self._run(i)
        return self._own_state(i % len(self._runs))

    def _own_state(self, i: int) -> Any:
        r = self._runs[i]
        if self._groups is not None and r.state is None:
            for g in self._groups:
                if g.members[0] <= i <= g.members[-1] and i in g.members:
                    k = g.members.index(i)
                    return type(g.state)(*(np.array(f[k : k + 1]) for f in g.state))
        if r.state is None:
            return None
        return type(r.state)(*(np.array(f) for f in r.state))

    def _next_gradient(
        self, r: _Run
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(true gradient, noise, batch indices, batch gradient) of run ``r``'s next step.

        The one place that says which gradient a step uses, as ``_steps`` computes it: the
        mini-batch's gradient (``data.gradient`` at the position over the batch the stream
        shows next) or, without a batch, the true gradient; plus the noise, which ``_chunk``
        draws as ``noise * rng.standard_normal((T, 2))`` in step order, so the next step's
        noise is the first row drawn from a copy of the generator.
        """
        last = r.hist.n - 1
        true_grad = r.hist.grad[last].copy()
        noise = np.zeros(2)
        if r.spec.noise > 0 and r.rng is not None:
            rng = copy.deepcopy(r.rng)
            noise = r.spec.noise * rng.standard_normal((1, 2))[0]
        batch = batch_grad = None
        data = getattr(self._surface, "data", None)
        if r.batches is not None and data is not None:
            batch = np.array(r.batches.current())
            with np.errstate(all="ignore"):
                g = data.gradient(r.hist.pos[last][None], batch[None])
            batch_grad = np.asarray(g, dtype=np.float64).reshape(2)
        return true_grad, noise, batch, batch_grad

    def frame(self) -> Frame:
        """A snapshot of every run now, safe to hand to another thread."""
        n = len(self._runs)
        steps = np.empty(n, dtype=np.int64)
        pos, grads, deltas, vel = (np.zeros((n, 2)) for _ in range(4))
        losses, lrs = np.empty(n), np.empty(n)
        stopped = np.empty(n, dtype=np.int64)
        for i, r in enumerate(self._runs):
            h, last = r.hist, r.hist.n - 1
            steps[i] = last
            pos[i], grads[i] = h.pos[last], h.grad[last]
            losses[i], lrs[i] = h.loss[last], h.lr[last]
            deltas[i] = r.delta
            stopped[i] = r.stopped_at
        if self._groups is not None:
            for g in self._groups:
                vel[g.members] = _velocities(g.state, g.opt, len(g.members))
        else:
            for i, r in enumerate(self._runs):
                if r.status is Status.RUNNING and r.state is not None:
                    vel[i] = _velocities(r.state, r.opt, 1)[0]
        for a in (steps, pos, losses, grads, lrs, deltas, stopped, vel):
            a.flags.writeable = False
        return Frame(
            steps,
            pos,
            losses,
            grads,
            lrs,
            deltas,
            tuple(r.status for r in self._runs),
            stopped,
            vel,
            tuple(r.reason for r in self._runs),
            tuple(_readonly(r.batches.current()) if r.batches is not None
                  and r.status is Status.RUNNING else None for r in self._runs),
        )  # fmt: skip

    # ------------------------------------------------------------------ stepping
    def step(self, n: int = 1) -> int:
        """Step every RUNNING run ``n`` times (fewer if all stop); return the steps done.

        Runs that converge or diverge on the way stop exactly there; the others go on.
        If an optimizer raises, nothing of the failed chunk is kept.
        """
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        done = 0
        with np.errstate(all="ignore"):
            while done < n:
                if self._groups is None:
                    self._build()
                assert self._groups is not None
                if not self._groups:
                    break
                na = self._groups[-1].b
                steps = min(n - done, _CHUNK_STEPS, max(1, _CHUNK_CELLS // na))
                done += self._chunk(steps)
        return done

    def _build(self) -> None:
        """Group the running balls by optimizer key; blocks are contiguous in the active arrays."""
        by_key: dict[str, list[int]] = {}
        for i, r in enumerate(self._runs):
            if r.status is Status.RUNNING:
                by_key.setdefault(r.opt.info.name, []).append(i)
        groups, a = [], 0
        for members in by_key.values():
            groups.append(_Group(members, self._runs, a))
            a = groups[-1].b
        for g in groups:
            for i in g.members:
                self._runs[i].state = None  # the group owns the rows now
        self._groups = groups

    def _dissolve(self) -> None:
        """Hand each group's state rows back to their runs (before any change of grouping)."""
        if self._groups is None:
            return
        for g in self._groups:
            for i, s in zip(g.members, _split_state(g.state, len(g.members)), strict=True):
                self._runs[i].state = s
        self._groups = None

    def _chunk(self, steps: int) -> int:
        groups = self._groups
        assert groups is not None
        runs = self._runs
        order = [i for g in groups for i in g.members]
        active = [runs[i] for i in order]
        na = len(order)
        T = steps

        P = np.empty((T + 1, na, 2))
        G = np.empty((T + 1, na, 2))
        D = np.empty((T, na, 2))
        for j, r in enumerate(active):
            last = r.hist.n - 1
            P[0, j] = r.hist.pos[last]
            G[0, j] = r.hist.grad[last]
        loss0 = np.array([r.hist.loss[r.hist.n - 1] for r in active])
        step0 = np.array([r.steps for r in active])

        # learning rates, one row per step of this chunk (plus the next one), per ball
        LR = np.empty((T + 1, na))
        ticks = np.arange(T + 1)
        for j, r in enumerate(active):
            LR[:, j] = r.lr_at(step0[j] + ticks)

        noise = None
        noisy = [(j, r) for j, r in enumerate(active) if r.spec.noise > 0]
        if noisy:
            noise = np.zeros((T, na, 2))
            for j, r in noisy:
                assert r.rng is not None
                noise[:, j] = r.spec.noise * r.rng.standard_normal((T, 2))
            if getattr(self._surface, "one_d", False):
                # f(x) has no y to be noisy about: the ball stays on its curve (y = 0).
                noise[..., 1] = 0.0

        batched = [(j, r.batches) for j, r in enumerate(active) if r.batches is not None]
        saved = [b.save() for _, b in batched]
        data = getattr(self._surface, "data", None)  # duck-typed surfaces have none

        gradient = self._surface.gradient
        hessian = self._surface.hessian
        plan = []
        for g in groups:
            lr = LR[:, g.a : g.b, None] if g.scheduled else None
            plan.append((g.a, g.b, g.opt.update, lr, g.needs_hessian))
        states = [g.state for g in groups]

        # If anything below raises, nothing of this chunk is kept: states are immutable
        # NamedTuples collected in a local list, no run's rows have been touched yet, and the
        # batch samplers are put back.
        try:
            self._steps(T, P, G, D, noise, plan, states, hessian, gradient, batched, data)
        except BaseException:
            for (_, b), s in zip(batched, saved, strict=True):
                b.load(s)
            raise
        for g, s in zip(groups, states, strict=True):
            g.state = s

        L = np.asarray(self._surface.value(P[1:].reshape(-1, 2)), dtype=float).reshape(T, na)
        keep, ends = self._judge(P[1:], G[1:], L, loss0, step0)

        stopped_any = False
        for j, r in enumerate(active):
            k = int(keep[j])
            if k:
                r.hist.append(P[1 : k + 1, j], L[:k, j], G[1 : k + 1, j], LR[1 : k + 1, j])
                r.delta = D[k - 1, j].copy()
            end = ends[j]
            if end is not None:
                r.status, r.stopped_at, r.reason = end
                stopped_any = True
        if stopped_any:
            self._dissolve()
            for r in active:
                if r.status is not Status.RUNNING:
                    r.state = None  # rows past the stop are meaningless; reset re-inits
        return int(keep.max()) if na else 0

    @staticmethod
    def _steps(
        T: int,
        P: np.ndarray,
        G: np.ndarray,
        D: np.ndarray,
        noise: np.ndarray | None,
        plan: list[Any],
        states: list[Any],
        hessian: Any,
        gradient: Any,
        batched: list[tuple[int, _nn.BatchStream]],
        data: Any,
    ) -> None:
        """The inner loop of a chunk: T steps of every group, rows written into P, G, D."""
        for t in range(T):
            theta = P[t]
            grad = G[t] if noise is None else G[t] + noise[t]
            if batched:
                # A mini-batch run steps on its batch's gradient; G keeps the true one.
                grad = grad.copy() if noise is None else grad
                by_size: dict[int, list[int]] = {}
                for j, b in batched:
                    by_size.setdefault(len(b.current()), []).append(j)
                rows_of = dict(batched)
                for rows in by_size.values():
                    idx = np.stack([rows_of[j].current() for j in rows])
                    g = data.gradient(theta[rows], idx)
                    grad[rows] = g if noise is None else g + noise[t, rows]
                for _, b in batched:
                    b.advance()
            for k in range(len(plan)):
                a, b, update, lr, needs_h = plan[k]
                if lr is None and not needs_h:  # the common case: no keyword dict to build
                    D[t, a:b], states[k] = update(grad[a:b], states[k], theta[a:b])
                    continue
                kw: dict[str, Any] = {}
                if lr is not None:
                    kw["lr"] = lr[t]
                if needs_h:
                    kw["hessian"] = hessian(theta[a:b])
                D[t, a:b], states[k] = update(grad[a:b], states[k], theta[a:b], **kw)
            np.add(theta, D[t], out=P[t + 1])
            G[t + 1] = gradient(P[t + 1])

    def _judge(
        self, P: np.ndarray, G: np.ndarray, L: np.ndarray, loss0: np.ndarray, step0: np.ndarray
    ) -> tuple[np.ndarray, list[tuple[Status, int, str] | None]]:
        """How many of the chunk's rows each ball keeps, and why it stopped (if it did).

        ``P``, ``G`` are (T, n, 2), ``L`` is (T, n) for the rows after this chunk's steps.
        """
        T, na = L.shape
        big = T + 1
        # first bad row per ball (T+1 = none), by cause, so the reason can be named
        in_box = ((self._lo <= P) & (self._hi >= P)).all(axis=-1)
        finite = np.isfinite(P).all(axis=-1) & np.isfinite(G).all(axis=-1) & np.isfinite(L)
        loss_ok = np.abs(L) <= DIVERGENCE_LOSS

        def first(mask: np.ndarray) -> np.ndarray:
            hit = mask.any(axis=0)
            return np.where(hit, mask.argmax(axis=0), big)

        bad_nonfinite = first(~finite)
        bad_box = first(~in_box & finite)
        bad_loss = first(~loss_ok & finite)
        bad = np.minimum(np.minimum(bad_nonfinite, bad_box), bad_loss)

        rules: list[tuple[str, np.ndarray]] = []
        stop = self._stop
        if stop.max_steps is not None:
            rules.append(("max_steps", np.maximum(stop.max_steps - step0 - 1, 0)))
        if stop.grad_tol is not None:
            rules.append(("grad_tol", first(np.hypot(G[..., 0], G[..., 1]) <= stop.grad_tol)))
        if stop.loss_tol is not None:
            prev = np.concatenate([loss0[None], L[:-1]], axis=0)
            rules.append(("loss_tol", first(np.abs(L - prev) <= stop.loss_tol)))

        # earliest rule met per ball (first rule wins a tie, as listed above)
        conv_t = np.full(na, big)
        conv_rule = np.zeros(na, dtype=np.int64)
        for k, (_, at) in enumerate(rules):
            sooner = at < conv_t
            conv_t = np.where(sooner, at, conv_t)
            conv_rule = np.where(sooner, k, conv_rule)
        converged = (conv_t < bad) & (conv_t < T)
        diverged = ~converged & (bad < T)
        keep = np.where(converged, conv_t + 1, np.where(diverged, bad, T))
        ends: list[tuple[Status, int, str] | None] = [None] * na
        for j in np.flatnonzero(converged | diverged):  # only the balls that stopped
            if converged[j]:
                why = rules[int(conv_rule[j])][0]
                ends[j] = (Status.CONVERGED, int(step0[j] + conv_t[j]) + 1, why)
            else:
                if bad_nonfinite[j] == bad[j]:
                    why = "non-finite"
                elif bad_box[j] == bad[j]:
                    why = "out of bounds"
                else:
                    why = "loss too large"
                ends[j] = (Status.DIVERGED, int(step0[j] + bad[j]) + 1, why)
        return keep, ends

    # ------------------------------------------------------------------ live edits
    def set_params(self, i: int, params: dict[str, Any]) -> None:
        """New hyperparameters for run ``i``; its position and optimizer state are kept.

        ``params`` replaces the run's params (pass the full set). Raises ValueError, leaving the
        run unchanged, if they are invalid for its optimizer.
        """
        r = self._run(i)
        opt = _optimizers.create(r.spec.optimizer, **params)
        self._dissolve()
        r.opt = opt
        r.spec.params = dict(params)
        self._refresh_lr(r)

    def set_optimizer(self, i: int, name: str, params: dict[str, Any] | None = None) -> None:
        """Switch run ``i`` to another optimizer (or restart the same one) where the ball is.

        The optimizer state (momentum, moments, step count) and the schedule start afresh; the
        position and history are kept.
        """
        r = self._run(i)
        params = {} if params is None else dict(params)
        opt = _optimizers.create(name, **params)
        self._dissolve()
        r.opt = opt
        r.spec.optimizer, r.spec.params = name, params
        if r.status is Status.RUNNING:
            r.state = opt.init(r.hist.pos[r.hist.n - 1 : r.hist.n].copy())
        r.sched_origin = r.steps
        self._refresh_lr(r)

    def set_schedule(self, i: int, schedule: dict[str, Any] | None) -> None:
        """A new learning-rate schedule (None = constant) for run ``i``, counted from its
        optimizer's (re)start; the optimizer state is kept."""
        r = self._run(i)
        sched = _make_schedule(schedule)
        self._dissolve()
        r.schedule = sched
        r.spec.schedule = None if schedule is None else dict(schedule)
        self._refresh_lr(r)

    def set_noise(self, i: int, noise: float) -> None:
        """Gradient noise (standard deviation) for run ``i`` from the next step on."""
        r = self._run(i)
        spec = _check_spec(replace(r.spec, noise=noise))
        r.spec.noise = spec.noise

    def set_batch_size(self, i: int, batch_size: int | None) -> None:
        """Mini-batch size for run ``i`` from its next step on (None = the full batch).

        The position and optimizer state are kept. A run that had batches goes on in the same
        epoch's permutation at the same place; a run that had none starts its batch stream
        afresh (seeded as at a reset). ValueError, changing nothing, for a bad size.
        """
        r = self._run(i)
        spec = _check_spec(replace(r.spec, batch_size=batch_size))
        r.spec.batch_size = spec.batch_size
        old = r.batches
        r.batches = self._make_batches(r)
        if old is not None and r.batches is not None:
            old.k = r.batches.k
            r.batches = old

    def set_start(self, i: int, start: Sequence[float]) -> None:
        """Move run ``i``'s start. A run that has already moved restarts from there."""
        r = self._run(i)
        spec = _check_spec(replace(r.spec, start=(float(start[0]), float(start[1]))))
        self._start_values(spec.start)  # raises before anything changes if f is not finite there
        r.spec.start = spec.start
        self.reset_run(i)

    def set_stop(self, stop: StopRules | None) -> None:
        """New stop rules. A running run that already meets one (its steps reached a lowered
        ``max_steps``, its gradient is within a raised ``grad_tol``) stops where it is; a
        stopped run stays stopped until reset."""
        self._stop = _check_stop(stop)
        for r in self._runs:
            if r.status is Status.RUNNING:
                why = self._met_now(r)
                if why is not None:
                    self._dissolve()
                    r.status, r.stopped_at, r.reason = Status.CONVERGED, r.steps, why
                    r.state = None

    def add_run(self, spec: RunSpec) -> int:
        """Add a ball at its start (step 0); returns its index. Its noise stream is keyed by a
        fresh id (the count of runs ever added), so existing runs' streams are unchanged."""
        spec = _check_spec(spec)
        run = _Run(spec, self._next_uid)
        self._start_values(spec.start)
        self._dissolve()
        self._runs.append(run)
        self._next_uid += 1
        self._restart(run)
        return len(self._runs) - 1

    def remove_run(self, i: int) -> None:
        self._run(i)
        self._dissolve()
        del self._runs[i]

    def set_surface(self, surface: Surface) -> None:
        """Another surface: every run restarts from its start on it."""
        old = self._surface
        self._surface = surface
        try:
            for r in self._runs:
                self._start_values(r.spec.start)
        except ValueError:
            self._surface = old
            raise
        self._set_bounds(surface)
        self.reset()

    def reset(self) -> None:
        """Every run back to its start with fresh optimizer state and noise stream."""
        self._dissolve()
        for r in self._runs:
            self._restart(r)

    def reset_run(self, i: int) -> None:
        """Run ``i`` back to its start with fresh state and noise stream; others untouched."""
        r = self._run(i)
        self._dissolve()
        self._restart(r)

    # ------------------------------------------------------------------ internals
    def _run(self, i: int) -> _Run:
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"run index must be an int, got {type(i).__name__}")
        if not -len(self._runs) <= i < len(self._runs):
            raise IndexError(f"no run {i}: there are {len(self._runs)}")
        return self._runs[i]

    def _set_bounds(self, surface: Surface) -> None:
        (x0, x1), (y0, y1) = surface.box
        margin = DIVERGENCE_BOX_DIAGONALS * math.hypot(x1 - x0, y1 - y0)
        self._lo = np.array([min(x0, x1) - margin, min(y0, y1) - margin])
        self._hi = np.array([max(x0, x1) + margin, max(y0, y1) + margin])

    def _start_values(self, start: tuple[float, float]) -> tuple[np.ndarray, float, np.ndarray]:
        xy = np.array([start], dtype=float)
        with np.errstate(all="ignore"):
            loss = float(np.asarray(self._surface.value(xy), dtype=float).reshape(-1)[0])
            grad = np.asarray(self._surface.gradient(xy), dtype=float).reshape(2)
        if not (math.isfinite(loss) and np.isfinite(grad).all()):
            raise ValueError(
                f"the surface is not finite at the start ({start[0]:g}, {start[1]:g}):"
                f" f = {loss!r}, gradient = {grad.tolist()!r}"
            )
        return xy[0], loss, grad

    def _restart(self, r: _Run) -> None:
        """Row 0 at the start, fresh state, reseeded noise; the caller has dissolved groups."""
        xy, loss, grad = self._start_values(r.spec.start)
        r.sched_origin = 0
        r.status, r.stopped_at, r.reason = Status.RUNNING, -1, None
        r.delta = np.zeros(2)
        r.rng = np.random.default_rng([self._seed, r.uid])
        r.batches = self._make_batches(r)
        r.state = r.opt.init(xy[None].copy())
        r.hist.restart(xy, loss, grad, float(r.lr_at(0)))
        why = self._met_now(r)
        if why is not None:
            r.status, r.stopped_at, r.reason = Status.CONVERGED, 0, why
            r.state = None
        self._groups = None

    def _make_batches(self, r: _Run) -> _nn.BatchStream | None:
        """A fresh batch stream for run ``r``, or None when it steps on the exact gradient."""
        data = getattr(self._surface, "data", None)  # duck-typed surfaces have none
        k = r.spec.batch_size
        if data is None or k is None or k >= data.m:
            return None
        return _nn.BatchStream(data.m, k, self._seed, r.uid)

    def _met_now(self, r: _Run) -> str | None:
        """The stop rule run ``r`` meets at its current row without another step, if any."""
        stop = self._stop
        if stop.max_steps is not None and r.steps >= stop.max_steps:
            return "max_steps"
        g = r.hist.grad[r.hist.n - 1]
        if stop.grad_tol is not None and math.hypot(g[0], g[1]) <= stop.grad_tol:
            return "grad_tol"
        return None

    def _refresh_lr(self, r: _Run) -> None:
        """The last row's lr is the one the next step uses: keep it true after an edit."""
        if r.status is Status.RUNNING:
            r.hist.lr[r.hist.n - 1] = float(r.lr_at(r.steps))
