"""Optimizers as pairs of pure functions, computed exactly as ``torch.optim`` computes them.

An optimizer is ``(init, update)`` in the optax shape::

    opt = create("adam", lr=0.01, betas=(0.9, 0.99), amsgrad=True)
    state = opt.init(theta)                        # theta: float64 (n_balls, dim)
    delta, state = opt.update(grad, state, theta)  # never mutates grad, state or theta
    theta = theta + delta

Why this shape: the simulation steps many balls at once, keeps every state it likes (history,
undo, row-wise slicing when a ball is removed), and swaps hyperparameters mid-run by calling
``create`` again and handing the old state to the new ``update``. So every state is a NamedTuple
of arrays whose rows belong to balls, it always holds every buffer the optimizer can use whatever
the flags, and it carries a per-ball step counter of shape (n, 1).

Why torch's formulas and not the papers' or optax's: a PyTorch user should see, in gdsim, the
path that ``torch.optim`` would take with the same hyperparameters. So the names and defaults are
torch's constructor arguments (``betas`` as a pair), the rules follow the single-tensor path
(``foreach=False``) operation by operation, in torch's order, so that float64 trajectories agree
to the last bit or two. Where they are not bit-identical it is for two reasons only: torch's
vectorised CPU kernels fuse ``a + w*b`` into one FMA (lerp, add with alpha), NumPy rounds twice;
and torch raises ``beta ** step`` with the C library's ``pow`` while we use ``np.power`` (on
AVX-512 machines NumPy's SIMD ``pow`` may differ from libm by an ulp). NumPy itself picks
different ``pow`` kernels for 0-d, broadcast and contiguous operands, so every power goes through
``power`` below, which always hands NumPy contiguous arrays: stepping a grid of hyperparameters
as (n, 1) arrays then gives exactly the numbers of stepping each row on its own.

Hyperparameters may be arrays of shape (n, 1) (or anything broadcastable to it), so one call steps
a whole grid of settings (sweeps). Every branch of torch's code ("if momentum != 0",
``nesterov``, ``amsgrad``, ``centered``, the skip of a zero weight decay, the two forms of lerp)
is then taken element-wise with ``np.where``, so each row gets its own branch exactly.

Differences from other libraries worth knowing (the per-optimizer docstrings below give more):

- optax puts eps inside the square root for RMS-style rules, adds eps differently in RAdam and
  has no ``momentum_decay`` schedule in NAdam. None of that is ported here.
- Momentum: torch stores the velocity in gradient units and multiplies by the *current* lr;
  Sutskever et al. (2013) store it in parameter units. Paths agree for a constant lr and differ
  under a schedule.
- Newton and Lion have no torch twin; their docstrings cite the papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

Array = np.ndarray

__all__ = [
    "CATALOGUE",
    "AdadeltaState",
    "AdagradState",
    "AdamState",
    "AdamaxState",
    "HyperParam",
    "LionState",
    "NAdamState",
    "NewtonState",
    "Optimizer",
    "OptimizerInfo",
    "RAdamState",
    "RMSpropState",
    "SGDState",
    "create",
    "info",
    "names",
    "power",
    "range_text",
    "validate",
]


# --------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------


class HyperParam(NamedTuple):
    """One hyperparameter: its torch name, default, allowed range and how to show it.

    ``low``/``high`` are the range that ``create`` enforces (None = unbounded); for a "pair" they
    apply to each element. ``kind`` is "float", "bool", "pair" or "int" (integer-valued counts
    such as a schedule's ``step_size``).
    """

    name: str
    default: float | bool | tuple[float, float]
    low: float | None
    high: float | None
    low_open: bool
    high_open: bool
    log: bool
    kind: str
    doc: str


class OptimizerInfo(NamedTuple):
    """What the app shows about an optimizer: its id, names, idea, rule and hyperparameters."""

    name: str
    display_name: str
    idea: str
    rule: str
    params: tuple[HyperParam, ...]
    needs_hessian: bool


class Optimizer(NamedTuple):
    """A validated optimizer: ``init(theta) -> state`` and
    ``update(grad, state, theta, *, lr=None, hessian=None) -> (delta, state)``."""

    info: OptimizerInfo
    hyper: dict[str, object]
    init: Callable[[Array], Any]
    update: Callable[..., tuple[Array, Any]]

    def __reduce__(self) -> tuple[object, ...]:
        # init/update are closures and do not pickle; the name and validated hyperparameters
        # rebuild the same optimizer (the engine may run in another process).
        return (_recreate, (self.info.name, self.hyper))


def _recreate(name: str, hyper: dict[str, Any]) -> Optimizer:
    return create(name, **hyper)


# --------------------------------------------------------------------------------------------
# States (field names are torch's state-dict keys, so a reader can hold the two side by side)
# --------------------------------------------------------------------------------------------


class SGDState(NamedTuple):
    step: Array  # (n, 1) steps taken
    momentum_buffer: Array  # (n, dim) velocity in gradient units (torch's buf)


class AdagradState(NamedTuple):
    step: Array
    sum: Array  # running sum of squared gradients, starts at initial_accumulator_value


class RMSpropState(NamedTuple):
    step: Array
    square_avg: Array
    grad_avg: Array  # used when centered
    momentum_buffer: Array  # used when momentum > 0


class AdadeltaState(NamedTuple):
    step: Array
    square_avg: Array
    acc_delta: Array


class AdamState(NamedTuple):
    """Shared by adam and adamw."""

    step: Array
    exp_avg: Array
    exp_avg_sq: Array
    max_exp_avg_sq: Array  # used when amsgrad


class NAdamState(NamedTuple):
    step: Array
    exp_avg: Array
    exp_avg_sq: Array
    mu_product: Array  # (n, 1) product of the momentum schedule, starts at 1


class RAdamState(NamedTuple):
    step: Array
    exp_avg: Array
    exp_avg_sq: Array


class AdamaxState(NamedTuple):
    step: Array
    exp_avg: Array
    exp_inf: Array


class NewtonState(NamedTuple):
    step: Array


class LionState(NamedTuple):
    step: Array
    exp_avg: Array


# --------------------------------------------------------------------------------------------
# Hyperparameter declarations
# --------------------------------------------------------------------------------------------


def _lr(default: float, doc: str = "step size γ") -> HyperParam:
    return HyperParam("lr", default, 0.0, None, False, False, True, "float", doc)


def _eps(default: float, doc: str) -> HyperParam:
    return HyperParam("eps", default, 0.0, None, False, False, True, "float", doc)


def _wd(default: float = 0.0, doc: str = "L2 penalty λ: adds λθ to the gradient") -> HyperParam:
    return HyperParam("weight_decay", default, 0.0, None, False, False, False, "float", doc)


def _betas(default: tuple[float, float], doc: str) -> HyperParam:
    return HyperParam("betas", default, 0.0, 1.0, False, True, False, "pair", doc)


def _flag(name: str, doc: str) -> HyperParam:
    return HyperParam(name, False, None, None, False, False, False, "bool", doc)


_ADAM_BETAS_DOC = "decay rates (β₁, β₂) of the running averages of g and g²"
_DECOUPLED = _flag(
    "decoupled_weight_decay", "decay θ directly (θ ← θ(1 − γλ), as AdamW) instead of adding λθ to g"
)

_PARAMS: dict[str, tuple[HyperParam, ...]] = {
    "sgd": (
        _lr(1e-3),
        HyperParam(
            "momentum", 0.0, 0.0, None, False, False, False, "float",
            "momentum μ: fraction of the velocity kept each step (0 = plain gradient descent)",
        ),
        HyperParam(
            "dampening", 0.0, 0.0, 1.0, False, False, False, "float",
            "dampening τ: the new gradient enters the velocity with weight 1 − τ",
        ),
        _wd(),
        _flag("nesterov", "Nesterov momentum: step along g + μ·b (needs μ > 0 and τ = 0)"),
    ),
    "adagrad": (
        _lr(1e-2),
        HyperParam(
            "lr_decay", 0.0, 0.0, None, False, False, False, "float",
            "learning-rate decay: γ_t = γ / (1 + (t − 1)·lr_decay)",
        ),
        _wd(),
        HyperParam(
            "initial_accumulator_value", 0.0, 0.0, None, False, False, False, "float",
            "starting value of the sum of squared gradients",
        ),
        _eps(1e-10, "added to √s (outside the root) to avoid dividing by zero"),
    ),
    "rmsprop": (
        _lr(1e-2),
        HyperParam(
            "alpha", 0.99, 0.0, 1.0, False, False, False, "float",
            "smoothing constant α of the running average of g²",
        ),
        _eps(1e-8, "added to the root (outside it) to avoid dividing by zero"),
        _wd(),
        HyperParam(
            "momentum", 0.0, 0.0, None, False, False, False, "float",
            "momentum μ applied to the normalised step",
        ),
        _flag("centered", "divide by the estimated variance of g instead of its raw second moment"),
    ),
    "adadelta": (
        _lr(1.0, "scale γ applied to the Adadelta step (1 in the paper)"),
        HyperParam(
            "rho", 0.9, 0.0, 1.0, False, False, False, "float",
            "decay rate ρ of the running averages of g² and Δ²",
        ),
        _eps(1e-6, "added inside both roots; also sets the size of the very first steps"),
        _wd(),
    ),
    "adam": (
        _lr(1e-3),
        _betas((0.9, 0.999), _ADAM_BETAS_DOC),
        _eps(1e-8, "added to √v̂ (outside the root, after bias correction)"),
        _wd(),
        _flag("amsgrad", "AMSGrad: normalise by the largest v seen so far"),
        _DECOUPLED,
    ),
    "adamw": (
        _lr(1e-3),
        _betas((0.9, 0.999), _ADAM_BETAS_DOC),
        _eps(1e-8, "added to √v̂ (outside the root, after bias correction)"),
        _wd(1e-2, "decoupled weight decay λ: θ ← θ(1 − γλ) before the Adam step"),
        _flag("amsgrad", "AMSGrad: normalise by the largest v seen so far"),
    ),
    "nadam": (
        _lr(2e-3),
        _betas((0.9, 0.999), _ADAM_BETAS_DOC),
        _eps(1e-8, "added to √v̂ (outside the root)"),
        _wd(),
        HyperParam(
            "momentum_decay", 4e-3, 0.0, None, False, False, True, "float",
            "ψ in the momentum schedule μ_t = β₁(1 − ½·0.96^{tψ})",
        ),
        _DECOUPLED,
    ),
    "radam": (
        _lr(1e-3),
        _betas((0.9, 0.999), _ADAM_BETAS_DOC),
        _eps(1e-8, "added to √v (outside the root, before bias correction)"),
        _wd(),
        _DECOUPLED,
    ),
    "adamax": (
        _lr(2e-3),
        _betas((0.9, 0.999), "decay rates (β₁, β₂) of the mean of g and of the max-norm of g"),
        _eps(1e-8, "added to |g| inside the max"),
        _wd(),
    ),
    "newton": (
        _lr(1.0, "fraction γ of the Newton step taken (1 = full step)"),
        HyperParam(
            "damping", 0.0, 0.0, None, False, False, False, "float",
            "δ added to the Hessian's diagonal: large δ turns Newton into gradient descent",
        ),
    ),
    "lion": (
        _lr(1e-4, "step size γ: every coordinate moves by exactly γ (before decay)"),
        _betas((0.9, 0.99), "β₁ mixes m and g for the sign; β₂ is the decay of m"),
        _wd(0.0, "decoupled weight decay λ: adds λθ to the signed step"),
    ),
}  # fmt: skip

_TEXT: dict[str, tuple[str, str, str]] = {
    "sgd": (
        "SGD",
        "Step against the gradient; momentum lets the ball keep rolling.",
        "g ← g + λθ\n"
        "if μ ≠ 0:  b ← g (t = 1),  b ← μb + (1 − τ)g (t > 1)\n"
        "           d ← g + μb (nesterov)  or  d ← b\n"
        "else:      d ← g\n"
        "θ ← θ − γd",
    ),
    "adagrad": (
        "Adagrad",
        "Each coordinate's step shrinks with the sum of its squared gradients.",
        "g ← g + λθ;  γ_t = γ / (1 + (t − 1)·lr_decay)\ns ← s + g²\nθ ← θ − γ_t·g / (√s + ε)",
    ),
    "rmsprop": (
        "RMSprop",
        "Divide by a running RMS of the gradient, so every coordinate moves at a similar pace.",
        "g ← g + λθ\nv ← αv + (1 − α)g²\n"
        "centered: ḡ ← αḡ + (1 − α)g;  den = √(v − ḡ²) + ε    else den = √v + ε\n"
        "μ > 0: b ← μb + g/den;  θ ← θ − γb     else θ ← θ − γ·g/den",
    ),
    "adadelta": (
        "Adadelta",
        "Step size in the units of θ: ratio of running RMS of past steps to that of gradients.",
        "g ← g + λθ\nv ← ρv + (1 − ρ)g²\nΔ ← √(u + ε) / √(v + ε) · g\nu ← ρu + (1 − ρ)Δ²\n"
        "θ ← θ − γΔ",
    ),
    "adam": (
        "Adam",
        "Momentum on g, normalised by a running RMS of g, both bias-corrected.",
        "g ← g + λθ   (decoupled_weight_decay: θ ← θ(1 − γλ) instead)\n"
        "m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²\n"
        "amsgrad: v_max ← max(v_max, v), used for v below\n"
        "θ ← θ − γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)",
    ),
    "adamw": (
        "AdamW",
        "Adam with the weight decay applied to θ directly, not through the gradient.",
        "θ ← θ(1 − γλ)\nm ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²\n"
        "θ ← θ − γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)",
    ),
    "nadam": (
        "NAdam",
        "Adam with Nesterov momentum: look one momentum step ahead.",
        "μ_t = β₁(1 − ½·0.96^{tψ});  Π_t = Π_{t−1}μ_t\n"
        "m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  den = √(v/(1 − β₂ᵗ)) + ε\n"
        "θ ← θ − γ(1 − μ_t)/(1 − Π_t)·g/den − γμ_{t+1}/(1 − Π_tμ_{t+1})·m/den",
    ),
    "radam": (
        "RAdam",
        "Adam that starts as momentum SGD until the variance estimate can be trusted.",
        "m, v as Adam;  m̂ = m/(1 − β₁ᵗ);  ρ∞ = 2/(1 − β₂) − 1;  ρ_t = ρ∞ − 2tβ₂ᵗ/(1 − β₂ᵗ)\n"
        "ρ_t > 5: r = √((ρ_t − 4)(ρ_t − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρ_t))\n"
        "         θ ← θ − γ·m̂·r·√(1 − β₂ᵗ)/(√v + ε)\n"
        "else:    θ ← θ − γ·m̂",
    ),
    "adamax": (
        "Adamax",
        "Adam with the infinity norm: divide by a decaying maximum of |g|.",
        "m ← β₁m + (1 − β₁)g;  u ← max(β₂u, |g| + ε)\nθ ← θ − γ/(1 − β₁ᵗ) · m/u",
    ),
    "newton": (
        "Newton (damped)",
        "Divide the gradient by the curvature: one step to the bottom of a quadratic.",
        "θ ← θ − γ(H + δI)⁻¹g",
    ),
    "lion": (
        "Lion",
        "Move every coordinate by the same amount, in the sign of a momentum mix.",
        "c ← β₁m + (1 − β₁)g\nθ ← θ − γ(sign(c) + λθ)\nm ← β₂m + (1 − β₂)g",
    ),
}

_ORDER = (
    "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "nadam", "radam", "adamax",
    "newton", "lion",
)  # fmt: skip

CATALOGUE: dict[str, OptimizerInfo] = {
    name: OptimizerInfo(
        name=name,
        display_name=_TEXT[name][0],
        idea=_TEXT[name][1],
        rule=_TEXT[name][2],
        params=_PARAMS[name],
        needs_hessian=name == "newton",
    )
    for name in _ORDER
}


def names() -> list[str]:
    """Optimizer ids in the order the app lists them."""
    return list(_ORDER)


def info(name: str) -> OptimizerInfo:
    """Metadata of one optimizer; ValueError listing the valid ids for an unknown one."""
    try:
        return CATALOGUE[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown optimizer {name!r}; valid names are: {', '.join(_ORDER)}"
        ) from None


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------

_LABELS = {
    "lr": "learning rate",
    "eps": "epsilon value",
}


def range_text(p: HyperParam) -> str:
    """The allowed range as torch-style text: ">= 0", "in [0, 1)", ..."""
    lo, hi = p.low, p.high
    if lo is not None and hi is not None:
        return f"in {'(' if p.low_open else '['}{lo:g}, {hi:g}{')' if p.high_open else ']'}"
    if lo is not None:
        return f"{'>' if p.low_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if p.high_open else '<='} {hi:g}"
    return "any real number"


def _in_range(x: Any, p: HyperParam) -> Any:
    ok = np.isfinite(x) if p.high is None else ~np.isnan(x)
    if p.low is not None:
        ok = ok & ((x > p.low) if p.low_open else (x >= p.low))
    if p.high is not None:
        ok = ok & ((x < p.high) if p.high_open else (x <= p.high))
    return ok


def _shape_ok(a: Array) -> bool:
    return a.ndim == 0 or (a.ndim == 1 and a.shape[0] == 1) or (a.ndim == 2 and a.shape[1] == 1)


def _check_value(value: Any, p: HyperParam, what: str, label: str) -> Any:
    """One float/int/bool value or (m, 1) array -> validated Python scalar or read-only array."""
    if p.kind == "bool":
        a = np.asarray(value)
        if a.dtype != np.bool_:
            raise ValueError(f"Invalid {what}: {value!r} ({what} must be a bool)")
        if not _shape_ok(a):
            raise ValueError(
                f"Invalid {what}: array of shape {a.shape} ({what} must be a bool or an array "
                "of shape (n, 1), one row per ball)"
            )
        if a.size == 1:
            return bool(a.reshape(()))
        return _frozen(a)
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"Invalid {label}: {value!r} ({what} must be a number {range_text(p)})")
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"Invalid {label}: {value!r} ({what} must be a number {range_text(p)})"
        ) from None
    if not _shape_ok(a):
        raise ValueError(
            f"Invalid {label}: array of shape {a.shape} ({what} must be a number or an array of "
            "shape (n, 1), one row per ball)"
        )
    ok = _in_range(a, p)
    if p.kind == "int":
        ok = ok & (a == np.floor(a))
    if not np.all(ok):
        bad = a[~ok] if a.ndim else a
        shown = f"{float(bad.flat[0])!r}"
        if a.size > 1:
            shown += f" (and {int((~ok).sum()) - 1} more)" if (~ok).sum() > 1 else ""
        kind = "an integer " if p.kind == "int" else ""
        raise ValueError(f"Invalid {label}: {shown} ({what} must be {kind}{range_text(p)})")
    if a.size == 1:
        v = float(a.reshape(()))
        return int(v) if p.kind == "int" else v
    return _frozen(a)


def _frozen(a: Array) -> Array:
    a = np.array(a, dtype=a.dtype, copy=True).reshape(-1, 1)
    a.flags.writeable = False
    return a


def validate(params: tuple[HyperParam, ...], hyper: dict[str, Any], owner: str) -> dict[str, Any]:
    """Fill defaults, refuse unknown names and values outside each declared range.

    Shared with ``schedules``. Returns Python scalars where a value is one number, read-only
    (m, 1) arrays where it is one per ball.
    """
    known = {p.name: p for p in params}
    unknown = sorted(set(hyper) - set(known))
    if unknown:
        raise ValueError(
            f"Unknown hyperparameter {', '.join(map(repr, unknown))} for {owner}; "
            f"valid ones are: {', '.join(known)}"
        )
    out: dict[str, Any] = {}
    for p in params:
        value = hyper.get(p.name, p.default)
        if p.kind == "pair":
            if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 2:
                raise ValueError(
                    f"Invalid {p.name}: {value!r} ({p.name} must be a pair of numbers, each "
                    f"{range_text(p)})"
                )
            out[p.name] = tuple(
                _check_value(
                    value[i],
                    p._replace(kind="float"),
                    f"{p.name}[{i}]",
                    f"beta parameter at index {i}" if p.name == "betas" else f"{p.name}[{i}]",
                )
                for i in range(2)
            )
        else:
            out[p.name] = _check_value(value, p, p.name, _LABELS.get(p.name, f"{p.name} value"))
    return out


def _check_lr_override(lr: Any) -> Any:
    """A schedule's lr for this step: a number >= 0 or an (n, 1) array of them."""
    if isinstance(lr, float | int) and not isinstance(lr, bool):
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr!r} (lr must be >= 0)")
        return float(lr)
    a = np.asarray(lr, dtype=np.float64)
    if not _shape_ok(a):
        raise ValueError(
            f"Invalid learning rate: array of shape {a.shape} (lr must be a number or an array "
            "of shape (n, 1))"
        )
    if not np.all(a >= 0.0):
        bad = a[~(a >= 0.0)] if a.ndim else a
        raise ValueError(f"Invalid learning rate: {float(bad.flat[0])!r} (lr must be >= 0)")
    return float(a.reshape(())) if a.size == 1 else a.reshape(-1, 1)


# --------------------------------------------------------------------------------------------
# Small pieces shared by the rules
# --------------------------------------------------------------------------------------------


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray)


def _pick(cond: Any, if_true: Callable[[], Any], if_false: Callable[[], Any]) -> Any:
    """torch's ``if cond:`` taken per row when cond is an array (both sides are computed)."""
    if _is_array(cond):
        return np.where(cond, if_true(), if_false())
    return if_true() if cond else if_false()


def _flag_plan(cond: Any) -> Any:
    """A branch condition fixed at create: a bool when every row takes the same branch (so the
    branch runs alone, as for one ball), else the (n, 1) bool rows (both branches, picked per
    row). Either way each row gets exactly the numbers of its own branch."""
    if not _is_array(cond):
        return bool(cond)
    if cond.all():
        return True
    if not cond.any():
        return False
    return np.ascontiguousarray(cond, dtype=bool)


def _uniform(step: Array) -> Any:
    """The common step as a NumPy scalar when every ball is at the same step, else the array.

    Why: bias corrections are per ball; when all balls agree (the usual case) one scalar power
    replaces n of them. np.float64 scalars go through the same ufunc loops as arrays, so both
    paths give identical numbers.
    """
    if step.size <= 1:
        return step.flat[0] if step.size else step
    first = step.flat[0]
    return first if bool((step == first).all()) else step


def _lerp(start: Array, end: Array, weight: Any) -> Array:
    """torch.lerp: start + w(end − start) for |w| < 0.5, else end − (end − start)(1 − w)."""
    d = end - start
    if _is_array(weight):
        small = start + d * weight
        big = end - d * (1.0 - weight)
        return np.where(np.abs(weight) < 0.5, small, big)
    if abs(weight) < 0.5:
        d *= weight
        d += start
        return d
    d *= 1.0 - weight
    np.subtract(end, d, out=d)
    return d


def _lerp_planned(start: Array, end: Array, w: Any, w1: Any, small: Any) -> Array:
    """``_lerp`` with its branch fixed at create: ``small`` is ``_flag_plan(|w| < 0.5)`` and
    ``w1`` is 1 − w. A fresh array, element for element ``_lerp``'s."""
    d = end - start
    if small is True:
        d *= w
        d += start
        return d
    big = d * w1
    np.subtract(end, big, out=big)
    if small is False:
        return big
    d *= w
    d += start
    np.copyto(d, big, where=~small)
    return d


def _ema_sq(avg: Array, g: Array, decay: Any) -> Array:
    """torch: avg.mul_(decay).addcmul_(g, g, value=1 − decay) -> avg·decay + ((1 − decay)·g)·g."""
    t = g * (1.0 - decay)
    t *= g
    out = avg * decay
    out += t
    return out


def _l2(g: Array, theta: Array, wd: Any, active: Any = True) -> Array:
    """torch's ``if weight_decay != 0: grad = grad.add(param, alpha=weight_decay)``."""
    cond = (wd != 0) & active if _is_array(wd) or _is_array(active) else (wd != 0 and active)
    return _pick(cond, lambda: g + wd * theta, lambda: g)


def _l2_planned(grad: Array, theta: Array, wd: Any, plan: Any) -> Array:
    """``_l2`` with its condition worked out once per shape: ``plan`` False (no row decays),
    True (every row does) or a row mask."""
    if plan is False:
        return grad
    g = wd * theta
    g += grad
    return g if plan is True else np.where(plan, g, grad)


def _decoupled(theta: Array, lr: Any, wd: Any, active: Any) -> Callable[[Array], Array]:
    """torch's ``param.mul_(1 − lr·wd)`` before the step, as a map step -> delta.

    The new position is computed in torch's order, θ(1 − γλ) + step, and the delta is its
    difference from θ, so θ + delta reproduces it exactly whenever the step is small next to θ
    (Sterbenz); otherwise within an ulp.
    """
    cond = (wd != 0) & active if _is_array(wd) or _is_array(active) else (wd != 0 and active)
    if not _is_array(cond) and not cond:
        return lambda u: u

    def apply(u: Array) -> Array:
        new = theta * (1.0 - lr * wd)
        new += u
        new -= theta
        return np.where(cond, new, u) if _is_array(cond) else new

    return apply


def _as_state_rows(theta: Array) -> None:
    """init's one check: positions are (n_balls, dim)."""
    if np.ndim(theta) != 2:
        raise ValueError(f"theta must have shape (n_balls, dim), got {np.shape(theta)}")


def _zeros(theta: Array) -> Array:
    return np.zeros(np.shape(theta), dtype=np.float64)


def _steps(theta: Array) -> Array:
    return np.zeros((np.shape(theta)[0], 1), dtype=np.float64)


def _check_inputs(grad: Array, state: Any, theta: Array, cls: type, name: str) -> None:
    if type(state) is not cls:
        raise ValueError(
            f"{name} expects a {cls.__name__} (from its init), got {type(state).__name__}"
        )
    if grad.shape != theta.shape or state.step.shape[0] != theta.shape[0]:
        raise ValueError(
            f"shapes disagree: grad {grad.shape}, theta {theta.shape}, state for "
            f"{state.step.shape[0]} balls"
        )


_REAL = (float, int, np.floating, np.integer)


def power(base: Any, exponent: Any) -> Any:
    """``base ** exponent`` that gives each element the same bits whatever the shapes.

    Why: NumPy's ``np.power`` takes a different kernel for 0-d operands, for a broadcast
    (stride-0) operand and for contiguous arrays (SIMD on AVX-512), and they disagree in the last
    bit now and then (a scalar exponent of 2 or 0.5 is special-cased). Materialising both
    operands as contiguous 1-D arrays sends every call through the same kernel. Scalars in,
    scalar out.
    """
    if isinstance(base, _REAL) and isinstance(exponent, _REAL):  # the common case, kept cheap
        pair = np.array((base, exponent), dtype=np.float64)
        return np.power(pair[:1], pair[1:])[0]
    b = np.asarray(base, dtype=np.float64)
    e = np.asarray(exponent, dtype=np.float64)
    shape = np.broadcast_shapes(b.shape, e.shape)
    flat_b = np.ascontiguousarray(np.broadcast_to(b, shape)).reshape(-1)
    flat_e = np.ascontiguousarray(np.broadcast_to(e, shape)).reshape(-1)
    out = np.power(flat_b, flat_e)
    return out[0] if not shape else out.reshape(shape)


def _bias(beta: Any, t: Any) -> Any:
    """1 − βᵗ, through ``power`` (see there)."""
    return 1.0 - power(beta, t)


# --------------------------------------------------------------------------------------------
# Fast paths. When every hyperparameter that picks a branch is one number (the app's case, and
# the benchmark's), SGD and Adam run as fused loops over blocks of rows: each block's arrays
# stay in cache, scratch is allocated once per call, and all the fresh outputs of a step come
# from one allocation. Same operations in the same order as the general code, so the numbers
# are identical (tests compare the two); only memory traffic and allocator churn differ, which
# at 1e5 balls is most of the time.
# --------------------------------------------------------------------------------------------

_BLOCK = 8192  # rows; 8192 x 2 x 8 B = 128 KiB per (n, 2) array


def _fresh(k: int, like: Array) -> Array:
    """k fresh arrays shaped like ``like`` from one allocation (index or unpack the result)."""
    return np.empty((k, *like.shape))


def _blocks(n: int) -> list[slice]:
    return [slice(a, min(a + _BLOCK, n)) for a in range(0, n, _BLOCK)]


def _rows(x: Any, sl: slice) -> Any:
    """A per-ball (n, 1) coefficient restricted to a block; scalars pass through."""
    return x[sl] if _is_array(x) and x.ndim else x


def _sgd_kernel(
    g: Array,
    th: Array,
    b0: Array,
    b: Array,
    d: Array,
    gs: Array | None,
    t: Array | None,
    neg_lr: Any,
    mu: float,
    wd: float,
    nesterov: bool,
) -> None:
    """One block of fast SGD: writes the new buffer into ``b`` and the delta into ``d``."""
    if wd != 0:
        np.multiply(th, wd, out=gs)
        gs += g
        g = gs
    step = g
    if mu != 0:
        np.multiply(b0, mu, out=b)
        b += g
        step = b
        if nesterov:
            np.multiply(b, mu, out=t)
            t += g
            step = t
    np.multiply(step, neg_lr, out=d)


def _sgd_fast(
    grad: Array, state: SGDState, theta: Array, lr: Any, mu: float, wd: float, nesterov: bool
) -> tuple[Array, SGDState]:
    """SGD with scalar momentum, zero dampening, scalar weight decay and nesterov flag."""
    n, dim = grad.shape
    if mu != 0:
        new_buf, delta = _fresh(2, grad)
    else:
        delta, new_buf = np.empty_like(grad), state.momentum_buffer
    scratch = np.empty((2, min(n, _BLOCK), dim)) if (wd != 0 or nesterov) else (None, None)
    b0, neg_lr = state.momentum_buffer, -lr
    if n <= _BLOCK:
        _sgd_kernel(grad, theta, b0, new_buf, delta, *scratch, neg_lr, mu, wd, nesterov)
    else:
        for sl in _blocks(n):
            k = sl.stop - sl.start
            gs, t = (None, None) if scratch[0] is None else (scratch[0, :k], scratch[1, :k])
            _sgd_kernel(grad[sl], theta[sl], b0[sl], new_buf[sl], delta[sl], gs, t,
                        _rows(neg_lr, sl), mu, wd, nesterov)  # fmt: skip
    return delta, SGDState(state.step + 1.0, new_buf)


def _adam_kernel(
    g: Array,
    th: Array,
    m0: Array,
    v0: Array,
    vmax0: Array,
    m: Array,
    v: Array,
    vmax: Array,
    d: Array,
    tmp: Array,
    gs: Array,
    neg_ss: Any,
    bc2s: Any,
    decay: Any,
    c: tuple,
) -> None:
    """One block of Adam: writes m, v, (vmax) and the delta into the given arrays.

    Coefficients are scalars or this block's (k, 1) rows; a flag is a bool (its branch taken
    for the whole block) or a (k, 1) bool array (both branches computed, picked per row).
    """
    beta2, eps, wd, amsgrad, w1, c2, l2, dec, lerp = c
    if l2 is not False:
        np.multiply(th, wd, out=gs)
        gs += g
        g = gs if l2 is True else np.where(l2, gs, g)
    np.subtract(g, m0, out=m)  # torch.lerp, the branch picked by |w| < 0.5
    if lerp is True:
        m *= w1
        m += m0
    elif lerp is False:
        m *= 1.0 - w1
        np.subtract(g, m, out=m)
    else:
        big = m * (1.0 - w1)
        np.subtract(g, big, out=big)
        m *= w1
        m += m0
        np.copyto(m, big, where=~lerp)
    np.multiply(g, c2, out=tmp)
    tmp *= g
    np.multiply(v0, beta2, out=v)
    v += tmp
    if amsgrad is True:
        np.maximum(vmax0, v, out=vmax)
        np.sqrt(vmax, out=tmp)
    elif amsgrad is False:
        np.sqrt(v, out=tmp)
    else:
        np.maximum(vmax0, v, out=tmp)
        np.copyto(vmax, vmax0)
        np.copyto(vmax, tmp, where=amsgrad)
        np.copyto(tmp, v, where=~amsgrad)
        np.sqrt(tmp, out=tmp)
    tmp /= bc2s
    tmp += eps
    np.multiply(m, neg_ss, out=d)
    d /= tmp
    if dec is not False:
        np.multiply(th, decay, out=tmp)
        tmp += d
        if dec is True:
            np.subtract(tmp, th, out=d)
        else:
            tmp -= th
            np.copyto(d, tmp, where=dec)


def _adam_fast(
    grad: Array, state: AdamState, theta: Array, lr: Any, c: tuple
) -> tuple[Array, AdamState]:
    """Adam/AdamW in blocks of rows; any hyperparameter may be one number or (n, 1) rows.

    ``c`` = (β₁, β₂, ε, λ, amsgrad, 1 − β₁, 1 − β₂, L2 on, decoupled decay on, lerp's small
    branch, the β's as one flat array for ``power`` or None), from ``_Coefficients``; flags
    are bools or mixed bool rows (see ``_flag_plan``).
    """
    n, dim = grad.shape
    beta1, beta2, eps, wd, amsgrad, w1, c2, l2, dec, lerp, flat_betas = c
    keep_vmax = amsgrad is False
    parts = _fresh(3 if keep_vmax else 4, grad)
    m_new, v_new, delta = parts[0], parts[1], parts[2]
    vmax_new = state.max_exp_avg_sq if keep_vmax else parts[3]
    step = state.step + 1.0
    t = _uniform(step)
    if _is_array(t):
        neg_ss = -(lr / _bias(beta1, t))
        bc2_sqrt = np.sqrt(_bias(beta2, t))
    elif flat_betas is None:  # one power call for both betas; Python floats round as NumPy's
        p1, p2 = np.power(np.array((beta1, beta2)), np.array((t, t))).tolist()
        neg_ss = -(lr / (1.0 - p1))
        bc2_sqrt = math.sqrt(1.0 - p2)
    else:  # per-ball betas, one step: one contiguous power call, as ``power`` would make
        p = np.power(flat_betas, np.full(len(flat_betas), t))
        np.subtract(1.0, p, out=p)
        p = p.reshape(2, n, -1)
        neg_ss = -(lr / p[0])
        bc2_sqrt = np.sqrt(p[1])
    decay = 1.0 - lr * wd if dec is not False else None
    scratch = np.empty((2, min(n, _BLOCK), dim))
    m0, v0, vmax0 = state.exp_avg, state.exp_avg_sq, state.max_exp_avg_sq
    kc = (beta2, eps, wd, amsgrad, w1, c2, l2, dec, lerp)
    if n <= _BLOCK:
        _adam_kernel(grad, theta, m0, v0, vmax0, m_new, v_new, vmax_new, delta, *scratch,
                     neg_ss, bc2_sqrt, decay, kc)  # fmt: skip
    else:
        for sl in _blocks(n):
            k = sl.stop - sl.start
            kc_sl = tuple(_rows(x, sl) for x in kc)
            _adam_kernel(grad[sl], theta[sl], m0[sl], v0[sl], vmax0[sl], m_new[sl], v_new[sl],
                         vmax_new[sl], delta[sl], scratch[0, :k], scratch[1, :k],
                         _rows(neg_ss, sl), _rows(bc2_sqrt, sl), _rows(decay, sl),
                         kc_sl)  # fmt: skip
    return delta, AdamState(step, m_new, v_new, vmax_new)


class _Coefficients:
    """Hyperparameters as the kernels want them for data of a given shape.

    Per-ball (n, 1) rows are repeated to the data's (n, dim) shape when n is small: NumPy's
    loops over broadcast operands cost about twice those over plain contiguous ones, and at a
    few balls that overhead is the step. The values are the same, so are the results. Flat
    arrays meant for ``power`` (``flat``: indices of entries that hold ``k`` stacked (n, 1)
    columns, flattened) are repeated the same way. Bools, Python numbers and None pass through.
    """

    __slots__ = ("cache", "flat", "raw")

    def __init__(self, raw: tuple, flat: tuple[int, ...] = ()) -> None:
        self.raw, self.flat, self.cache = raw, flat, {}

    def get(self, shape: tuple[int, ...]) -> tuple:
        got = self.cache.get(shape)
        if got is not None:
            return got
        n = shape[0]
        if n > _BLOCK or not any(_is_array(x) for x in self.raw):
            got = self.raw
        else:
            got = tuple(
                _repeat_flat(x, shape) if i in self.flat and x is not None
                else _repeat_rows(x, shape)
                for i, x in enumerate(self.raw)
            )  # fmt: skip
        if len(self.cache) >= 8:
            self.cache.clear()
        self.cache[shape] = got
        return got


def _repeat_rows(x: Any, shape: tuple[int, ...]) -> Any:
    if _is_array(x) and x.ndim == 2 and x.shape[1] == 1 and x.shape[0] == shape[0]:
        return np.ascontiguousarray(np.broadcast_to(x, shape))
    return x


def _repeat_flat(x: Array, shape: tuple[int, ...]) -> Array:
    n = shape[0]
    cols = x.reshape(-1, n, 1)
    if cols.shape[1] != n:
        return x
    return np.ascontiguousarray(np.broadcast_to(cols, (len(cols), *shape))).reshape(-1)


# --------------------------------------------------------------------------------------------
# The rules. Each builder takes validated hyperparameters and returns (init, update).
# --------------------------------------------------------------------------------------------

Update = Callable[..., tuple[Array, Any]]


def _build_sgd(h: dict[str, Any]) -> tuple[Callable[[Array], SGDState], Update]:
    """SGD, heavy ball, Nesterov: torch.optim.SGD to the letter.

    ::

        g ← g + λθ                                  (if λ ≠ 0)
        if μ ≠ 0:
            b ← g                  at t = 1 (a copy of g: no dampening on the first step)
            b ← μ·b + (1 − τ)·g    for t > 1
            d ← g + μ·b  if nesterov  else  b
        else:
            d ← g
        θ ← θ − γ·d

    With τ = 0 and a constant γ this is Polyak's heavy ball θ⁺ = θ − γ∇f(θ) + μ(θ − θ⁻).
    Sutskever et al. (2013, "On the importance of initialization and momentum in deep
    learning") keep the velocity in parameter units, v ← μv − γ∇f(θ + μv); θ ← θ + v. torch's
    stored θ is Sutskever's look-ahead point and its buffer is in gradient units, multiplied by
    the *current* γ: the two paths agree while γ is constant and part ways under a schedule.
    "The first step" is per ball (its step counter is 0). A ball whose momentum is switched on
    mid-run starts from the zero buffer kept while μ was 0, so b = (1 − τ)g there where torch
    (whose buffer would not exist yet) copies g; the two agree when τ = 0.
    """
    lr0, mu, tau, wd, nesterov = (h[k] for k in ("lr", "momentum", "dampening", "weight_decay",
                                                 "nesterov"))  # fmt: skip
    fast = not any(_is_array(x) for x in (mu, tau, wd, nesterov)) and tau == 0
    damped = _is_array(tau) or tau != 0
    coefs = _Coefficients(
        (mu, tau, wd, _flag_plan(wd != 0), _flag_plan(mu != 0), _flag_plan(nesterov))
    )

    def init(theta: Array) -> SGDState:
        _as_state_rows(theta)
        return SGDState(_steps(theta), _zeros(theta))

    def update(
        grad: Array, state: SGDState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, SGDState]:
        _check_inputs(grad, state, theta, SGDState, "sgd")
        lr = lr0 if lr is None else _check_lr_override(lr)
        if fast:
            return _sgd_fast(grad, state, theta, lr, mu, wd, nesterov)
        mu_, tau_, wd_, l2, has_mu, nest = coefs.get(grad.shape)
        g = _l2_planned(grad, theta, wd_, l2)
        buf = state.momentum_buffer
        if has_mu is False:
            new_buf, d = buf, g
        else:
            new_buf = buf * mu_
            if damped:
                new_buf += g * (1.0 - tau_)
                first = state.step == 0
                if first.any():
                    new_buf = np.where(first, g, new_buf)
            else:
                # (1 − τ)·g with τ = 0 is g itself, and μ·0 + g = g on the first step.
                new_buf += g
            if has_mu is not True:
                np.copyto(new_buf, buf, where=~has_mu)
            d = new_buf
            if nest is not False:
                d = mu_ * new_buf
                d += g
                if nest is not True:
                    np.copyto(d, new_buf, where=~nest)
            if has_mu is not True:
                d = np.where(has_mu, d, g)
        delta = d * -lr
        return delta, SGDState(state.step + 1.0, new_buf)

    return init, update


def _build_adagrad(h: dict[str, Any]) -> tuple[Callable[[Array], AdagradState], Update]:
    """Adagrad (Duchi et al., 2011) as torch.optim.Adagrad::

        s₀ = initial_accumulator_value
        g ← g + λθ;   γ_t = γ / (1 + (t − 1)·lr_decay)
        s ← s + g²;   θ ← θ − γ_t·g / (√s + ε)          (ε outside the root)

    optax's adagrad puts ε inside the root and starts s at 0.1.
    """
    lr0, lr_decay, wd, s0, eps = (h[k] for k in ("lr", "lr_decay", "weight_decay",
                                                 "initial_accumulator_value", "eps"))  # fmt: skip

    def init(theta: Array) -> AdagradState:
        _as_state_rows(theta)
        s = np.empty(np.shape(theta))
        s[...] = s0
        return AdagradState(_steps(theta), s)

    def update(
        grad: Array, state: AdagradState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, AdagradState]:
        _check_inputs(grad, state, theta, AdagradState, "adagrad")
        lr = lr0 if lr is None else _check_lr_override(lr)
        step = state.step + 1.0
        t = _uniform(step)
        g = _l2(grad, theta, wd)
        clr = lr / (1 + (t - 1) * lr_decay)
        s = g * g
        s += state.sum
        std = np.sqrt(s)
        std += eps
        delta = g * -clr
        delta /= std
        return delta, AdagradState(step, s)

    return init, update


def _build_rmsprop(h: dict[str, Any]) -> tuple[Callable[[Array], RMSpropState], Update]:
    """RMSprop (Hinton's lecture 6e) as torch.optim.RMSprop::

        g ← g + λθ
        v ← αv + (1 − α)g²
        centered:  ḡ ← αḡ + (1 − α)g;   den = √(v − ḡ²) + ε
        else:                            den = √v + ε          (ε outside the root)
        μ > 0:  b ← μb + g/den;  θ ← θ − γb                   (b starts at zero)
        else:   θ ← θ − γ·g/den

    No bias correction: the first step with the defaults is about 10·γ·sign(g). optax and Keras
    put ε inside the root (√(v + ε)); TensorFlow 1 started v at 1.
    """
    lr0, alpha, eps, wd, mu, centered = (h[k] for k in ("lr", "alpha", "eps", "weight_decay",
                                                        "momentum", "centered"))  # fmt: skip
    w = 1.0 - alpha
    coefs = _Coefficients(
        (alpha, 1.0 - alpha, eps, wd, mu, w, 1.0 - w, _flag_plan(np.abs(w) < 0.5),
         _flag_plan(wd != 0), _flag_plan(centered), _flag_plan(mu > 0))
    )  # fmt: skip

    def init(theta: Array) -> RMSpropState:
        _as_state_rows(theta)
        return RMSpropState(_steps(theta), _zeros(theta), _zeros(theta), _zeros(theta))

    def update(
        grad: Array, state: RMSpropState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, RMSpropState]:
        _check_inputs(grad, state, theta, RMSpropState, "rmsprop")
        lr = lr0 if lr is None else _check_lr_override(lr)
        alpha_, c_, eps_, wd_, mu_, w_, w1_, small, l2, cen, has_mu = coefs.get(grad.shape)
        g = _l2_planned(grad, theta, wd_, l2)
        v = g * c_  # torch: avg.mul_(α).addcmul_(g, g, value=1 − α)
        v *= g
        v += state.square_avg * alpha_
        if cen is False:
            ga, den = state.grad_avg, np.sqrt(v)
        else:
            ga = _lerp_planned(state.grad_avg, g, w_, w1_, small)
            den = ga * ga
            np.subtract(v, den, out=den)
            np.sqrt(den, out=den)
            if cen is not True:
                np.copyto(ga, state.grad_avg, where=~cen)
                den = np.where(cen, den, np.sqrt(v))
        den += eps_
        buf = state.momentum_buffer
        if has_mu is False:
            new_buf = buf
            delta = g * -lr
            delta /= den
        else:
            new_buf = buf * mu_
            new_buf += g / den
            delta = new_buf * -lr
            if has_mu is not True:
                plain = g * (-lr)
                plain /= den
                delta = np.where(has_mu, delta, plain)
                np.copyto(new_buf, buf, where=~has_mu)
        return delta, RMSpropState(state.step + 1.0, v, ga, new_buf)

    return init, update


def _build_adadelta(h: dict[str, Any]) -> tuple[Callable[[Array], AdadeltaState], Update]:
    """Adadelta (Zeiler, 2012) as torch.optim.Adadelta::

        g ← g + λθ
        v ← ρv + (1 − ρ)g²
        Δ ← √(u + ε) / √(v + ε) · g                     (ε inside both roots)
        u ← ρu + (1 − ρ)Δ²
        θ ← θ − γΔ

    The paper has no γ (γ = 1, torch's default). ε sets the size of the first steps: with u = 0
    the first Δ is about √ε/√(1 − ρ) per unit gradient, so Adadelta starts very slowly.
    """
    lr0, rho, eps, wd = (h[k] for k in ("lr", "rho", "eps", "weight_decay"))

    def init(theta: Array) -> AdadeltaState:
        _as_state_rows(theta)
        return AdadeltaState(_steps(theta), _zeros(theta), _zeros(theta))

    def update(
        grad: Array, state: AdadeltaState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, AdadeltaState]:
        _check_inputs(grad, state, theta, AdadeltaState, "adadelta")
        lr = lr0 if lr is None else _check_lr_override(lr)
        g = _l2(grad, theta, wd)
        v = _ema_sq(state.square_avg, g, rho)
        std = v + eps
        np.sqrt(std, out=std)
        step = state.acc_delta + eps
        np.sqrt(step, out=step)
        step /= std
        step *= g
        u = _ema_sq(state.acc_delta, step, rho)
        delta = step * -lr
        return delta, AdadeltaState(state.step + 1.0, v, u)

    return init, update


def _build_adam(h: dict[str, Any], decoupled_default: bool) -> tuple[Callable, Update]:
    """Adam (Kingma & Ba, 2015), AMSGrad (Reddi et al., 2018), AdamW (Loshchilov & Hutter,
    2019), as torch.optim.Adam / AdamW::

        L2:        g ← g + λθ
        decoupled: θ ← θ(1 − γλ)       (AdamW; g unchanged)
        m ← β₁m + (1 − β₁)g        (torch: lerp)
        v ← β₂v + (1 − β₂)g²
        amsgrad:   v_max ← max(v_max, v)     (max of the raw v, corrected afterwards)
        den = √(v or v_max)/√(1 − β₂ᵗ) + ε   (ε outside the root, after bias correction)
        θ ← θ − (γ/(1 − β₁ᵗ))·m/den

    The paper writes ε added to √v̂ (the same thing). optax's ``eps_root`` adds inside the root
    (0 by default). Keras' AMSGrad keeps the max of the corrected v. AdamW's decay multiplies by
    γ (torch), not by a separate schedule multiplier as in the paper.
    """
    lr0, eps, wd = h["lr"], h["eps"], h["weight_decay"]
    beta1, beta2 = h["betas"]
    decoupled = h.get("decoupled_weight_decay", decoupled_default)
    w1, c2 = 1.0 - beta1, 1.0 - beta2
    flat_betas = None
    if _is_array(beta1) or _is_array(beta2):
        k = len(beta1) if _is_array(beta1) else len(beta2)
        flat_betas = np.concatenate(
            (np.broadcast_to(beta1, (k, 1)), np.broadcast_to(beta2, (k, 1)))
        ).reshape(-1)
    not_decoupled = ~decoupled if _is_array(decoupled) else not decoupled
    consts = _Coefficients(
        (beta1, beta2, eps, wd, _flag_plan(h["amsgrad"]), w1, c2,
         _flag_plan((wd != 0) & not_decoupled), _flag_plan((wd != 0) & decoupled),
         _flag_plan(np.abs(w1) < 0.5), flat_betas),
        flat=(10,),
    )  # fmt: skip

    def init(theta: Array) -> AdamState:
        _as_state_rows(theta)
        return AdamState(_steps(theta), _zeros(theta), _zeros(theta), _zeros(theta))

    def update(
        grad: Array, state: AdamState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, AdamState]:
        _check_inputs(grad, state, theta, AdamState, "adam")
        lr = lr0 if lr is None else _check_lr_override(lr)
        return _adam_fast(grad, state, theta, lr, consts.get(grad.shape))

    return init, update


def _build_nadam(h: dict[str, Any]) -> tuple[Callable[[Array], NAdamState], Update]:
    """NAdam (Dozat, 2016) as torch.optim.NAdam, with its momentum schedule::

        μ_t = β₁(1 − ½·0.96^{tψ}),  μ_{t+1} = β₁(1 − ½·0.96^{(t+1)ψ});  Π_t = Π_{t−1}·μ_t, Π₀ = 1
        m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  den = √(v/(1 − β₂ᵗ)) + ε
        θ ← θ − γ(1 − μ_t)/(1 − Π_t)·g/den − γμ_{t+1}/(1 − Π_tμ_{t+1})·m/den

    Π_t is kept per ball in float64 (torch keeps it in the default dtype, float32 unless
    ``torch.set_default_dtype(torch.float64)``). optax's nadam has no ψ schedule (μ_t = β₁).
    The two additions to θ are done in torch's order before the delta is taken.
    """
    lr0, eps, wd, psi, decoupled = (h[k] for k in ("lr", "eps", "weight_decay",
                                                   "momentum_decay",
                                                   "decoupled_weight_decay"))  # fmt: skip
    beta1, beta2 = h["betas"]
    not_decoupled = ~decoupled if _is_array(decoupled) else not decoupled
    w1 = 1.0 - beta1

    def init(theta: Array) -> NAdamState:
        _as_state_rows(theta)
        return NAdamState(_steps(theta), _zeros(theta), _zeros(theta), _steps(theta) + 1.0)

    def update(
        grad: Array, state: NAdamState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, NAdamState]:
        _check_inputs(grad, state, theta, NAdamState, "nadam")
        lr = lr0 if lr is None else _check_lr_override(lr)
        step = state.step + 1.0
        t = _uniform(step)
        bc2 = _bias(beta2, t)
        g = _l2(grad, theta, wd, not_decoupled)
        mu = beta1 * (1.0 - 0.5 * power(0.96, t * psi))
        mu_next = beta1 * (1.0 - 0.5 * power(0.96, (t + 1) * psi))
        mu_product = state.mu_product * mu
        m = _lerp(state.exp_avg, g, w1)
        v = _ema_sq(state.exp_avg_sq, g, beta2)
        den = v / bc2
        np.sqrt(den, out=den)
        den += eps
        c1 = -lr * (1.0 - mu) / (1.0 - mu_product)
        c2 = (-lr * mu_next) / (1.0 - mu_product * mu_next)
        # torch: param.mul_(1 − γλ)?; param.addcdiv_(g, den, c1); param.addcdiv_(m, den, c2)
        wd_on = (wd != 0) & decoupled if _is_array(wd) or _is_array(decoupled) else (
            wd != 0 and decoupled)  # fmt: skip
        new = _pick(wd_on, lambda: theta * (1.0 - lr * wd), lambda: theta)
        a = g * c1
        a /= den
        new = new + a
        np.multiply(m, c2, out=a)
        a /= den
        new += a
        new -= theta
        return new, NAdamState(step, m, v, mu_product)

    return init, update


def _build_radam(h: dict[str, Any]) -> tuple[Callable[[Array], RAdamState], Update]:
    """RAdam (Liu et al., 2020) as torch.optim.RAdam::

        m, v as Adam;  m̂ = m/(1 − β₁ᵗ);  ρ∞ = 2/(1 − β₂) − 1;  ρ_t = ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
        ρ_t > 5:  r = √[(ρ_t − 4)(ρ_t − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρ_t)]
                  θ ← θ − γ·m̂·r·√(1 − β₂ᵗ)/(√v + ε)       (ε added to the raw √v)
        else:     θ ← θ − γ·m̂

    The switch is per ball (its own t). optax adds ε after bias-correcting v and switches at
    ρ_t ≥ 5 by default; the paper's threshold is 4.
    """
    lr0, eps, wd, decoupled = (h[k] for k in ("lr", "eps", "weight_decay",
                                              "decoupled_weight_decay"))  # fmt: skip
    beta1, beta2 = h["betas"]
    not_decoupled = ~decoupled if _is_array(decoupled) else not decoupled
    w1 = 1.0 - beta1
    rho_inf = 2 / (1 - beta2) - 1

    def init(theta: Array) -> RAdamState:
        _as_state_rows(theta)
        return RAdamState(_steps(theta), _zeros(theta), _zeros(theta))

    def update(
        grad: Array, state: RAdamState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, RAdamState]:
        _check_inputs(grad, state, theta, RAdamState, "radam")
        lr = lr0 if lr is None else _check_lr_override(lr)
        step = state.step + 1.0
        t = _uniform(step)
        g = _l2(grad, theta, wd, not_decoupled)
        m = _lerp(state.exp_avg, g, w1)
        v = _ema_sq(state.exp_avg_sq, g, beta2)
        bc1 = _bias(beta1, t)
        bc2 = _bias(beta2, t)
        rho_t = rho_inf - 2 * t * power(beta2, t) / bc2
        rectify = rho_t > 5.0
        base = m / bc1
        base *= lr
        if _is_array(rectify) or rectify:
            with np.errstate(invalid="ignore", divide="ignore"):
                rect = np.sqrt(
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                )
            adaptive = np.sqrt(v)
            adaptive += eps
            np.divide(np.sqrt(bc2), adaptive, out=adaptive)
            adaptive *= base
            adaptive *= rect
            step_vec = np.where(rectify, adaptive, base) if _is_array(rectify) else adaptive
        else:
            step_vec = base
        np.negative(step_vec, out=step_vec)
        delta = _decoupled(theta, lr, wd, decoupled)(step_vec)
        return delta, RAdamState(step, m, v)

    return init, update


def _build_adamax(h: dict[str, Any]) -> tuple[Callable[[Array], AdamaxState], Update]:
    """Adamax (Kingma & Ba, 2015, §7.1) as torch.optim.Adamax::

        g ← g + λθ
        m ← β₁m + (1 − β₁)g;   u ← max(β₂·u, |g| + ε)        (ε inside the max)
        θ ← θ − γ/(1 − β₁ᵗ) · m/u

    The paper has no ε; optax adds it outside the max (m/(u + ε)).
    """
    lr0, eps, wd = h["lr"], h["eps"], h["weight_decay"]
    beta1, beta2 = h["betas"]
    w1 = 1.0 - beta1

    def init(theta: Array) -> AdamaxState:
        _as_state_rows(theta)
        return AdamaxState(_steps(theta), _zeros(theta), _zeros(theta))

    def update(
        grad: Array, state: AdamaxState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, AdamaxState]:
        _check_inputs(grad, state, theta, AdamaxState, "adamax")
        lr = lr0 if lr is None else _check_lr_override(lr)
        step = state.step + 1.0
        t = _uniform(step)
        g = _l2(grad, theta, wd)
        m = _lerp(state.exp_avg, g, w1)
        a = np.abs(g)
        a += eps
        u = state.exp_inf * beta2
        np.maximum(u, a, out=u)
        clr = lr / _bias(beta1, t)
        np.multiply(m, -clr, out=a)
        a /= u
        return a, AdamaxState(step, m, u)

    return init, update


def _build_newton(h: dict[str, Any]) -> tuple[Callable[[Array], NewtonState], Update]:
    """Damped Newton: θ ← θ − γ(H + δI)⁻¹g, H the analytic Hessian passed as ``hessian=``.

    The classical method (see Nocedal & Wright, "Numerical Optimization", 2nd ed., 2006, §3.3
    and the Levenberg–Marquardt damping of §10.3): on a quadratic with γ = 1 and δ = 0 it lands
    on the stationary point in one step. Because it solves ∇f = 0 rather than descending, it is
    drawn to saddles and maxima as readily as to minima; δ > 0 blends it towards gradient
    descent with step 1/δ. Where H + δI is singular the step is inf/nan and the ball diverges
    (the simulation's business), rather than one ball failing the whole group.
    No torch twin: torch.optim has no Newton method.
    """
    lr0, damping = h["lr"], h["damping"]

    def init(theta: Array) -> NewtonState:
        _as_state_rows(theta)
        return NewtonState(_steps(theta))

    def update(
        grad: Array, state: NewtonState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, NewtonState]:
        _check_inputs(grad, state, theta, NewtonState, "newton")
        lr = lr0 if lr is None else _check_lr_override(lr)
        if hessian is None:
            raise ValueError("newton needs the Hessian: pass hessian= of shape (n, dim, dim)")
        n, dim = grad.shape
        hess = np.asarray(hessian, dtype=np.float64)
        if hess.shape != (n, dim, dim):
            raise ValueError(f"hessian must have shape {(n, dim, dim)}, got {hess.shape}")
        dmp = damping[:, :, None] if _is_array(damping) else damping
        with np.errstate(divide="ignore", invalid="ignore"):
            if dim == 2:
                a = hess[:, 0, 0] + (dmp[:, 0, 0] if _is_array(dmp) else dmp)
                b, c = hess[:, 0, 1], hess[:, 1, 0]
                d = hess[:, 1, 1] + (dmp[:, 0, 0] if _is_array(dmp) else dmp)
                det = a * d - b * c
                g0, g1 = grad[:, 0], grad[:, 1]
                x = np.stack(((d * g0 - b * g1) / det, (a * g1 - c * g0) / det), axis=1)
            else:
                mat = hess + dmp * np.eye(dim)
                x = np.full_like(grad, np.nan)
                try:
                    x = np.linalg.solve(mat, grad[:, :, None])[:, :, 0]
                except np.linalg.LinAlgError:
                    for i in range(n):
                        try:
                            x[i] = np.linalg.solve(mat[i], grad[i])
                        except np.linalg.LinAlgError:
                            x[i] = np.inf
        x *= -lr
        return x, NewtonState(state.step + 1.0)

    return init, update


def _build_lion(h: dict[str, Any]) -> tuple[Callable[[Array], LionState], Update]:
    """Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms",
    arXiv:2302.06675, Program 1)::

        c ← β₁m + (1 − β₁)g
        θ ← θ − γ(sign(c) + λθ)
        m ← β₂m + (1 − β₂)g

    Every coordinate moves by exactly γ (plus decay), so Lion wants a γ 3–10× smaller than
    AdamW's. The decay is folded into the step as in the paper; some ports apply it first as
    θ(1 − γλ), which is the same up to rounding. sign(0) = 0. No torch twin.
    """
    lr0, wd = h["lr"], h["weight_decay"]
    beta1, beta2 = h["betas"]

    def init(theta: Array) -> LionState:
        _as_state_rows(theta)
        return LionState(_steps(theta), _zeros(theta))

    def update(
        grad: Array, state: LionState, theta: Array, *, lr: Any = None, hessian: Any = None
    ) -> tuple[Array, LionState]:
        _check_inputs(grad, state, theta, LionState, "lion")
        lr = lr0 if lr is None else _check_lr_override(lr)
        c = state.exp_avg * beta1
        c += grad * (1.0 - beta1)
        d = np.sign(c)
        if _is_array(wd) or wd != 0:
            d += wd * theta
        d *= -lr
        m = state.exp_avg * beta2
        m += grad * (1.0 - beta2)
        return d, LionState(state.step + 1.0, m)

    return init, update


_BUILDERS: dict[str, Callable[[dict[str, Any]], tuple[Callable, Update]]] = {
    "sgd": _build_sgd,
    "adagrad": _build_adagrad,
    "rmsprop": _build_rmsprop,
    "adadelta": _build_adadelta,
    "adam": lambda h: _build_adam(h, False),
    "adamw": lambda h: _build_adam(h, True),
    "nadam": _build_nadam,
    "radam": _build_radam,
    "adamax": _build_adamax,
    "newton": _build_newton,
    "lion": _build_lion,
}


def create(name: str, **hyper: Any) -> Optimizer:
    """Build optimizer ``name`` with torch's constructor arguments as keywords.

    Ids: sgd, adagrad, rmsprop, adadelta, adam, adamw, nadam, radam, adamax, newton, lion.
    Plain gradient descent, heavy-ball momentum and Nesterov are all "sgd" with flags.
    Any hyperparameter may be an (n, 1) array (one value per ball). Unknown names, values
    outside their range, and torch's own refusals (nesterov without momentum or with
    dampening) raise ValueError naming the parameter and the allowed range.
    """
    meta = info(name)
    h = validate(meta.params, hyper, name)
    if name == "sgd":
        nest, mu, tau = h["nesterov"], h["momentum"], h["dampening"]
        bad = np.asarray(nest) & ((np.asarray(mu) <= 0) | (np.asarray(tau) != 0))
        if np.any(bad):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening "
                "(nesterov needs momentum > 0 and dampening == 0)"
            )
    init, update = _BUILDERS[name](h)
    return Optimizer(meta, h, init, update)
