"""Learning-rate schedules with ``torch.optim.lr_scheduler`` semantics, in closed form.

A schedule is a pure function ``lr_at(base_lr, step)``: ``step`` is the number of optimizer steps
already taken (0 for the first step), so the lr a ball uses at its k-th update is
``lr_at(base_lr, k)``, exactly what ``scheduler.get_last_lr()`` returns in torch after k calls of
``scheduler.step()`` (one per ``optimizer.step()``). Both arguments may be arrays (the simulation
passes each ball's step counter, shape (n, 1)); the result broadcasts.

Why closed forms: torch updates most schedulers recursively (lr ← lr·γ at each boundary; a ratio
of cosines for CosineAnnealingLR), which equals the closed form in exact arithmetic and differs
by a few ulps in floating point. A closed form can be evaluated for any ball at any step with no
history, which per-ball step counters need. torch itself uses the closed forms when a scheduler
is stepped with an explicit epoch.

- constant:     lr = base
- step:         lr = base · γ^⌊step / step_size⌋                          (StepLR)
- exponential:  lr = base · γ^step                                       (ExponentialLR)
- cosine:       lr = η_min + (base − η_min)·(1 + cos(π·step / T_max))/2     (CosineAnnealingLR)
- inverse_time: lr = base / (1 + decay_rate·step)     (torch: LambdaLR(lambda k: 1/(1 + d·k)))

Cosine and T_max: for step ≤ T_max torch's recursive form, lr_k = η_min + (lr_{k−1} − η_min)·
(1 + cos(πk/T))/(1 + cos(π(k−1)/T)), telescopes to the closed form (they agree to ~1e-17 here).
Beyond T_max the closed form is periodic: after reaching η_min at T_max the lr climbs back to
base at 2·T_max, and so on (a warm restart every 2·T_max, without the jump). torch follows the
same curve (its recursion has a special case at T_max + 1, where the ratio would divide by
zero), only its rounding errors now accumulate (~1e-14 relative by 6·T_max in the golden test).
Use T_max ≥ the run length to decay once and stay at the bottom.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from gdsim.engine.optimizers import HyperParam, power, validate

__all__ = ["CATALOGUE", "Schedule", "ScheduleInfo", "create", "names"]


class ScheduleInfo(NamedTuple):
    """What the app shows about a schedule; ``rule`` is the closed form as text."""

    name: str
    display_name: str
    idea: str
    params: tuple[HyperParam, ...]
    rule: str


class Schedule(NamedTuple):
    """A validated schedule: ``lr_at(base_lr, step) -> lr`` (arrays broadcast)."""

    info: ScheduleInfo
    hyper: dict[str, object]
    lr_at: Callable[[Any, Any], Any]

    def __reduce__(self) -> tuple[object, ...]:
        # lr_at is a closure: rebuild it from the name and validated hyperparameters.
        return (_recreate, (self.info.name, self.hyper))


def _recreate(name: str, hyper: dict[str, Any]) -> Schedule:
    return create(name, **hyper)


def _gamma(default: float, doc: str) -> HyperParam:
    return HyperParam("gamma", default, 0.0, 1.0, True, False, False, "float", doc)


CATALOGUE: dict[str, ScheduleInfo] = {
    "constant": ScheduleInfo(
        "constant", "Constant", "The same learning rate at every step.", (), "lr = base"
    ),
    "step": ScheduleInfo(
        "step",
        "Step decay",
        "Multiply the learning rate by γ every step_size steps (torch StepLR).",
        (
            HyperParam(
                "step_size", 100, 1.0, None, False, False, False, "int",
                "number of steps between two decays",
            ),
            _gamma(0.1, "factor applied at each decay"),
        ),
        "lr = base · γ^⌊step / step_size⌋",
    ),
    "exponential": ScheduleInfo(
        "exponential",
        "Exponential decay",
        "Multiply the learning rate by γ after every step (torch ExponentialLR).",
        (_gamma(0.99, "factor applied after every step"),),
        "lr = base · γ^step",
    ),
    "cosine": ScheduleInfo(
        "cosine",
        "Cosine annealing",
        "Glide from the base rate down to η_min along half a cosine over T_max steps "
        "(torch CosineAnnealingLR); it climbs back after T_max.",
        (
            HyperParam(
                "T_max", 500, 1.0, None, False, False, False, "int",
                "steps to reach η_min (the curve is periodic with period 2·T_max)",
            ),
            HyperParam(
                "eta_min", 0.0, 0.0, None, False, False, True, "float",
                "the lowest learning rate η_min, reached at T_max",
            ),
        ),
        "lr = η_min + (base − η_min)·(1 + cos(π·step / T_max)) / 2",
    ),
    "inverse_time": ScheduleInfo(
        "inverse_time",
        "Inverse time (1/t)",
        "Shrink the learning rate like 1/t, the classical Robbins–Monro rate.",
        (
            HyperParam(
                "decay_rate", 0.01, 0.0, None, False, False, True, "float",
                "how fast the rate falls: it halves at step 1/decay_rate",
            ),
        ),
        "lr = base / (1 + decay_rate · step)",
    ),
}  # fmt: skip


def names() -> list[str]:
    """Schedule ids in the order the app lists them."""
    return list(CATALOGUE)


def _check_base_and_step(base_lr: Any, step: Any) -> tuple[Any, Any]:
    base = np.asarray(base_lr, dtype=np.float64)
    s = np.asarray(step, dtype=np.float64)
    if not np.all(base >= 0):
        bad = base[~(base >= 0)] if base.ndim else base
        raise ValueError(f"Invalid learning rate: {float(bad.flat[0])!r} (base_lr must be >= 0)")
    if not np.all(s >= 0):
        bad = s[~(s >= 0)] if s.ndim else s
        raise ValueError(
            f"Invalid step: {float(bad.flat[0])!r} (step counts the optimizer steps taken: >= 0)"
        )
    return base, s


def _result(x: Any) -> Any:
    return float(x) if np.ndim(x) == 0 else x


def create(name: str, **hyper: Any) -> Schedule:
    """Build schedule ``name`` (constant, step, exponential, cosine, inverse_time).

    Unknown names and values outside their range raise ValueError naming the parameter and the
    allowed range. ``lr_at`` refuses a negative base lr or step the same way.
    """
    try:
        meta = CATALOGUE[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown schedule {name!r}; valid names are: {', '.join(CATALOGUE)}"
        ) from None
    h = validate(meta.params, hyper, f"schedule {name!r}")

    if name == "constant":

        def rule(base: Any, s: Any) -> Any:
            return base + np.zeros_like(s)

    elif name == "step":
        size, gamma = h["step_size"], h["gamma"]

        def rule(base: Any, s: Any) -> Any:
            return base * power(gamma, np.floor_divide(s, size))

    elif name == "exponential":
        gamma = h["gamma"]

        def rule(base: Any, s: Any) -> Any:
            return base * power(gamma, s)

    elif name == "cosine":
        t_max, eta_min = h["T_max"], h["eta_min"]

        def rule(base: Any, s: Any) -> Any:
            # torch: eta_min + (base_lr - eta_min) * (1 + cos(pi * last_epoch / T_max)) / 2
            return eta_min + (base - eta_min) * (1 + np.cos(np.pi * s / t_max)) / 2

    else:
        decay = h["decay_rate"]

        def rule(base: Any, s: Any) -> Any:
            return base / (1 + decay * s)

    def lr_at(base_lr: Any, step: Any) -> Any:
        """The lr for the optimizer step that follows ``step`` completed steps."""
        base, s = _check_base_and_step(base_lr, step)
        return _result(rule(base, s))

    return Schedule(meta, h, lr_at)
