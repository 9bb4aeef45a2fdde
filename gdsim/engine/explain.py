"""One optimizer step told as a story, and the per-axis internals of adaptive optimizers.

Why this module exists: a trajectory shows *where* a ball goes; a person learning optimization
wants to see *why* this step went there. ``explain`` replays the next update of one run in the
stages of its rule (reference/optimizers.md), each stage a caption built from this step's real
numbers plus the vectors to draw, as plain data, so a view can draw it knowing no formula.

Why it recomputes instead of instrumenting ``optimizers``: the optimizers are fused, vectorised
kernels tuned for 1e5 balls; threading captions through them would slow every step. Here each
rule is written out once more for one ball, operation for operation in the same order as the
engine (so float64 results agree to the last bit in practice), and the tests hold the two
against each other for every optimizer and flag: if the engine's rule changes and this one does
not, a test fails rather than a caption lying.

``internals`` gives, for the AdaGrad / RMSprop / Adadelta / Adam family, each axis's
second-moment accumulator and the effective learning rate it produces: the factor that
multiplies the (first-moment) gradient on that axis. That is what makes Adam walk diagonally
down a ravine where gradient descent zig-zags.

Pure NumPy; no Qt, no files.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from gdsim.engine import optimizers as _opt
from gdsim.engine.optimizers import power

__all__ = [
    "Arrow",
    "Box",
    "Explanation",
    "Internals",
    "Point",
    "Stage",
    "explain",
    "fmt",
    "fmt_vec",
    "internals",
]

Array = np.ndarray

#: Arrow spaces: "gradient" vectors are in gradient units (a view draws them normalised);
#: "position" vectors are displacements in the plane (a view draws them all at one scale).
SPACES = ("gradient", "position")


class Arrow(NamedTuple):
    """A vector drawn from ``origin``. ``kind`` picks the colour ("gradient", "decay",
    "velocity", "step", "gd_step"); ``space`` is one of SPACES."""

    kind: str
    origin: Array  # (2,)
    vector: Array  # (2,)
    label: str
    space: str


class Point(NamedTuple):
    """A marked point, e.g. the new position ("new_position") or the decayed θ ("decayed")."""

    kind: str
    xy: Array  # (2,)
    label: str


class Box(NamedTuple):
    """An axis-aligned rectangle centred on ``center`` with half-sides ``half`` (a per-axis
    step size), drawn in position space."""

    kind: str
    center: Array  # (2,)
    half: Array  # (2,)
    label: str


class Stage(NamedTuple):
    title: str
    caption: str
    arrows: tuple[Arrow, ...] = ()
    points: tuple[Point, ...] = ()
    boxes: tuple[Box, ...] = ()


class Explanation(NamedTuple):
    """The next step of one run: its stages, the resulting delta and where the ball lands."""

    optimizer: str
    step: int  # the optimizer's t for this update (1 on its first step; restarts with it)
    position: Array  # (2,) θ before the step
    gradient: Array  # (2,) the gradient this step uses (noise included)
    lr: float
    stages: tuple[Stage, ...]
    delta: Array  # (2,)
    new_position: Array  # (2,) θ + delta, as the simulation adds it


class Internals(NamedTuple):
    """Per-axis accumulator and effective learning rate of one run (see ``internals``)."""

    optimizer: str
    accumulator: Array  # (2,) the per-axis second moment (as the rule divides by it)
    accumulator_label: str
    effective_lr: Array  # (2,) factor multiplying ``moment`` on each axis
    moment: Array  # (2,) the (first-moment) gradient that factor multiplies
    moment_label: str
    step_size: Array  # (2,) |effective_lr × moment|: the per-axis step the rule takes


# ------------------------------------------------------------------------------- formatting
def fmt(x: float) -> str:
    """A number as a person reads it: 4 significant digits, no trailing zeros."""
    x = float(x)
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.4g}"


def fmt_vec(v: Any) -> str:
    a = np.asarray(v, dtype=float).reshape(-1)
    return "(" + ", ".join(fmt(c) for c in a) + ")"


# ------------------------------------------------------------------------------- helpers
def _row(a: Any) -> Array:
    return np.array(a, dtype=np.float64).reshape(-1)


def _state_rows(name: str, state: Any) -> Any:
    """The run's state as one ball's rows: step a float, every other field a (dim,) array."""
    expected = {
        "sgd": _opt.SGDState,
        "adagrad": _opt.AdagradState,
        "rmsprop": _opt.RMSpropState,
        "adadelta": _opt.AdadeltaState,
        "adam": _opt.AdamState,
        "adamw": _opt.AdamState,
        "nadam": _opt.NAdamState,
        "radam": _opt.RAdamState,
        "adamax": _opt.AdamaxState,
        "newton": _opt.NewtonState,
        "lion": _opt.LionState,
    }[name]
    if type(state) is not expected:
        raise ValueError(
            f"{name} is explained from its own state ({expected.__name__}), got "
            f"{type(state).__name__}"
        )
    if np.asarray(state.step).size != 1:
        raise ValueError("explain takes the state of one run (its own rows), not of a group")
    fields = {}
    for f in state._fields:
        v = np.asarray(getattr(state, f), dtype=np.float64)
        fields[f] = float(v.reshape(-1)[0]) if f in ("step", "mu_product") else v.reshape(-1)
    return fields


def _lerp(start: Array, end: Array, weight: float) -> Array:
    """torch.lerp for a scalar weight, in the engine's order (see optimizers._lerp)."""
    d = end - start
    if abs(weight) < 0.5:
        return d * weight + start
    return end - d * (1.0 - weight)


def _ema_sq(avg: Array, g: Array, decay: float) -> Array:
    return avg * decay + (g * (1.0 - decay)) * g


class _Story:
    """Collects stages for one step at θ."""

    def __init__(self, theta: Array) -> None:
        self.theta = theta
        self.stages: list[Stage] = []

    def add(self, title: str, caption: str, *items: Arrow | Point | Box) -> None:
        self.stages.append(
            Stage(
                title,
                caption,
                tuple(i for i in items if isinstance(i, Arrow)),
                tuple(i for i in items if isinstance(i, Point)),
                tuple(i for i in items if isinstance(i, Box)),
            )
        )

    def arrow(self, kind: str, vector: Array, label: str, space: str = "gradient") -> Arrow:
        return Arrow(kind, self.theta.copy(), np.array(vector, dtype=float), label, space)

    def box(self, half: Array, label: str) -> Box:
        return Box("effective", self.theta.copy(), np.abs(np.array(half, dtype=float)), label)

    def gradient(
        self,
        g: Array,
        true_g: Array | None,
        noise: Array | None,
        batch: tuple[int, int] | None = None,
        batch_g: Array | None = None,
    ) -> None:
        where = f"at θ = {fmt_vec(self.theta)}"
        if batch is not None and batch_g is not None:
            k, m = batch
            caption = (
                f"mini-batch gradient over {k} of the {m} data points {where}: "
                f"{fmt_vec(batch_g)} (the full data's ∇f is "
                f"{fmt_vec(true_g) if true_g is not None else '?'})"
            )
            if noise is not None and np.any(noise != 0):
                caption += f", plus this step's gradient noise {fmt_vec(noise)}"
            caption += f": g = {fmt_vec(g)}"
        elif noise is not None and np.any(noise != 0) and true_g is not None:
            caption = (
                f"gradient ∇f {fmt_vec(true_g)} {where}, plus this step's gradient noise "
                f"{fmt_vec(noise)}: g = {fmt_vec(g)}"
            )
        else:
            caption = f"gradient g = ∇f(θ) = {fmt_vec(g)} {where} (points uphill)"
        self.add("Gradient", caption, self.arrow("gradient", g, "g"))

    def l2(self, g: Array, wd: float, when: bool = True) -> Array:
        """torch's ``grad = grad.add(param, alpha=weight_decay)``; a stage when it applies."""
        if wd == 0 or not when:
            return g
        out = g + wd * self.theta
        self.add(
            "Weight decay (L2)",
            f"g ← g + λθ = {fmt_vec(g)} + {fmt(wd)} × {fmt_vec(self.theta)} = {fmt_vec(out)}",
            self.arrow("gradient", out, "g + λθ"),
        )
        return out

    def decay_stage(self, lr: float, wd: float) -> None:
        decayed = self.theta * (1.0 - lr * wd)
        self.add(
            "Decoupled weight decay",
            f"θ ← θ(1 − γλ) = {fmt_vec(self.theta)} × (1 − {fmt(lr)} × {fmt(wd)}) = "
            f"{fmt_vec(decayed)} (the gradient is left as it is)",
            self.arrow("decay", decayed - self.theta, "−γλθ", "position"),
            Point("decayed", decayed, "θ(1 − γλ)"),
        )

    def finish(self, delta: Array, gd: Array | None, how: str) -> tuple[Array, Array]:
        """The step stage (with the plain GD step beside it) and the landing stage."""
        items: list[Arrow | Point | Box] = [self.arrow("step", delta, "step", "position")]
        caption = f"step {how} = {fmt_vec(delta)}"
        if gd is not None:
            items.append(self.arrow("gd_step", gd, "−γg", "position"))
            caption += f"; plain gradient descent would step −γg = {fmt_vec(gd)}"
        self.add("Step", caption, *items)
        new = self.theta + delta
        self.add(
            "New position",
            f"new position θ + step = {fmt_vec(self.theta)} + {fmt_vec(delta)} = {fmt_vec(new)}",
            self.arrow("step", delta, "step", "position"),
            Point("new_position", new, "θ + step"),
        )
        return delta, new


# ------------------------------------------------------------------------------- the rules
def _sgd(s: _Story, h: dict, st: dict, g: Array, lr: float) -> Array:
    mu, tau, wd, nest = h["momentum"], h["dampening"], h["weight_decay"], h["nesterov"]
    g = s.l2(g, wd)
    if mu == 0:
        return s.finish(g * -lr, None, f"−γg = −{fmt(lr)} × {fmt_vec(g)}")[0]
    buf = st["momentum_buffer"]
    kept = buf * mu
    s.add(
        "Keep velocity",
        f"velocity μ × b = {fmt(mu)} × {fmt_vec(buf)} = {fmt_vec(kept)}",
        s.arrow("velocity", kept, "μb"),
    )
    if tau != 0:
        new_buf = kept + g * (1.0 - tau)
        if st["step"] == 0:
            new_buf = g.copy()
            caption = f"first step: the velocity starts as a copy of g: b = {fmt_vec(new_buf)}"
        else:
            caption = (
                f"new velocity b ← μb + (1 − τ)g = {fmt_vec(kept)} + {fmt(1.0 - tau)} × "
                f"{fmt_vec(g)} = {fmt_vec(new_buf)}"
            )
    else:
        new_buf = kept + g
        caption = f"new velocity b ← μb + g = {fmt_vec(kept)} + {fmt_vec(g)} = {fmt_vec(new_buf)}"
        if st["step"] == 0:
            caption += " (first step: b is g itself)"
    s.add("Add gradient", caption, s.arrow("velocity", new_buf, "b"))
    d = new_buf
    if nest:
        d = mu * new_buf + g
        s.add(
            "Nesterov look-ahead",
            f"direction d = g + μb = {fmt_vec(g)} + {fmt(mu)} × {fmt_vec(new_buf)} = {fmt_vec(d)}",
            s.arrow("velocity", d, "g + μb"),
        )
        how = f"−γd = −{fmt(lr)} × {fmt_vec(d)}"
    else:
        how = f"−γb = −{fmt(lr)} × {fmt_vec(d)}"
    return s.finish(d * -lr, g * -lr, how)[0]


def _adagrad(s: _Story, h: dict, st: dict, g: Array, lr: float) -> Array:
    t = st["step"] + 1.0
    g = s.l2(g, h["weight_decay"])
    decay, eps = h["lr_decay"], h["eps"]
    clr = lr / (1 + (t - 1) * decay)
    if decay != 0:
        s.add(
            "Learning-rate decay",
            f"γ_t = γ / (1 + (t − 1)·decay) = {fmt(lr)} / (1 + {fmt(t - 1)} × {fmt(decay)}) "
            f"= {fmt(clr)}",
        )
    acc = g * g + st["sum"]
    s.add(
        "Accumulate g²",
        f"sum of squared gradients s ← s + g² = {fmt_vec(st['sum'])} + {fmt_vec(g * g)} "
        f"= {fmt_vec(acc)}",
    )
    std = np.sqrt(acc) + eps
    eff = clr / std
    s.add(
        "Per-axis step size",
        f"effective learning rate γ_t / (√s + ε) = {fmt(clr)} / {fmt_vec(std)} = {fmt_vec(eff)}"
        " per axis: axes that have seen big gradients take small steps",
        s.box(eff * g, "|γ_t g/(√s+ε)| per axis"),
    )
    delta = (g * -clr) / std
    return s.finish(delta, g * -lr, f"−γ_t·g/(√s + ε) = −{fmt_vec(eff)} × {fmt_vec(g)}")[0]


def _rmsprop(s: _Story, h: dict, st: dict, g: Array, lr: float) -> Array:
    alpha, eps, mu, centered = h["alpha"], h["eps"], h["momentum"], h["centered"]
    g = s.l2(g, h["weight_decay"])
    v = g * (1.0 - alpha) * g + st["square_avg"] * alpha
    s.add(
        "Running average of g²",
        f"v ← αv + (1 − α)g² = {fmt(alpha)} × {fmt_vec(st['square_avg'])} + {fmt(1 - alpha)} × "
        f"{fmt_vec(g * g)} = {fmt_vec(v)}",
    )
    if centered:
        w = 1.0 - alpha
        ga = _lerp(st["grad_avg"], g, w)
        den = np.sqrt(v - ga * ga) + eps
        s.add(
            "Centre it",
            f"running mean of g: ḡ ← αḡ + (1 − α)g = {fmt_vec(ga)}; "
            f"den = √(v − ḡ²) + ε = {fmt_vec(den)}",
            s.arrow("velocity", ga, "ḡ"),
        )
    else:
        den = np.sqrt(v) + eps
        s.add("Root mean square", f"den = √v + ε = {fmt_vec(den)}")
    eff = lr / den
    s.add(
        "Per-axis step size",
        f"effective learning rate γ / den = {fmt(lr)} / {fmt_vec(den)} = {fmt_vec(eff)} per axis",
        s.box(eff * g, "|γ g/den| per axis"),
    )
    if mu > 0:
        buf = st["momentum_buffer"] * mu + g / den
        s.add(
            "Momentum",
            f"b ← μb + g/den = {fmt(mu)} × {fmt_vec(st['momentum_buffer'])} + "
            f"{fmt_vec(g / den)} = {fmt_vec(buf)}",
            s.arrow("velocity", buf, "b"),
        )
        return s.finish(buf * -lr, g * -lr, f"−γb = −{fmt(lr)} × {fmt_vec(buf)}")[0]
    delta = (g * -lr) / den
    return s.finish(delta, g * -lr, f"−γ·g/den = −{fmt(lr)} × {fmt_vec(g)} / {fmt_vec(den)}")[0]


def _adadelta(s: _Story, h: dict, st: dict, g: Array, lr: float) -> Array:
    rho, eps = h["rho"], h["eps"]
    g = s.l2(g, h["weight_decay"])
    v = _ema_sq(st["square_avg"], g, rho)
    s.add(
        "Running average of g²",
        f"v ← ρv + (1 − ρ)g² = {fmt(rho)} × {fmt_vec(st['square_avg'])} + {fmt(1 - rho)} × "
        f"{fmt_vec(g * g)} = {fmt_vec(v)}",
    )
    std = np.sqrt(v + eps)
    ratio = np.sqrt(st["acc_delta"] + eps) / std
    step = ratio * g
    s.add(
        "Per-axis step size",
        f"√(u + ε)/√(v + ε) = √({fmt_vec(st['acc_delta'])} + ε) / {fmt_vec(std)} = "
        f"{fmt_vec(ratio)}: the past steps' RMS over the gradients' RMS, per axis",
        s.box(lr * ratio * g, "|γΔ| per axis"),
    )
    u = _ema_sq(st["acc_delta"], step, rho)
    s.add(
        "Update Δ",
        f"Δ = ratio × g = {fmt_vec(step)}; running average of Δ² u ← ρu + (1 − ρ)Δ² = {fmt_vec(u)}",
        s.arrow("velocity", step, "Δ"),
    )
    return s.finish(step * -lr, g * -lr, f"−γΔ = −{fmt(lr)} × {fmt_vec(step)}")[0]


def _first_moment(s: _Story, st: dict, g: Array, beta1: float) -> Array:
    """torch's ``exp_avg.lerp_(grad, 1 - beta1)``, as a stage."""
    m = _lerp(st["exp_avg"], g, 1.0 - beta1)
    s.add(
        "First moment",
        f"m ← β₁m + (1 − β₁)g = {fmt(beta1)} × {fmt_vec(st['exp_avg'])} + {fmt(1 - beta1)} × "
        f"{fmt_vec(g)} = {fmt_vec(m)}",
        s.arrow("velocity", m, "m"),
    )
    return m


def _moments(s: _Story, st: dict, g: Array, beta1: float, beta2: float) -> tuple[Array, Array]:
    m = _first_moment(s, st, g, beta1)
    v = _ema_sq(st["exp_avg_sq"], g, beta2)
    s.add(
        "Second moment",
        f"v ← β₂v + (1 − β₂)g² = {fmt(beta2)} × {fmt_vec(st['exp_avg_sq'])} + {fmt(1 - beta2)}"
        f" × {fmt_vec(g * g)} = {fmt_vec(v)}",
    )
    return m, v


def _adam(s: _Story, h: dict, st: dict, g: Array, lr: float, decoupled: bool) -> Array:
    beta1, beta2 = h["betas"]
    eps, wd, amsgrad = h["eps"], h["weight_decay"], h["amsgrad"]
    t = st["step"] + 1.0
    g0 = g
    g = s.l2(g, wd, not decoupled)
    if decoupled and wd != 0:
        s.decay_stage(lr, wd)
    w1 = 1.0 - beta1
    # m exactly as the engine's kernel forms it (torch.lerp with weight 1 − β₁)
    d = g - st["exp_avg"]
    m = d * w1 + st["exp_avg"] if abs(w1) < 0.5 else g - d * (1.0 - w1)
    s.add(
        "First moment",
        f"m ← β₁m + (1 − β₁)g = {fmt(beta1)} × {fmt_vec(st['exp_avg'])} + {fmt(w1)} × "
        f"{fmt_vec(g)} = {fmt_vec(m)}",
        s.arrow("velocity", m, "m"),
    )
    v = st["exp_avg_sq"] * beta2 + (g * (1.0 - beta2)) * g
    s.add(
        "Second moment",
        f"v ← β₂v + (1 − β₂)g² = {fmt(beta2)} × {fmt_vec(st['exp_avg_sq'])} + {fmt(1 - beta2)}"
        f" × {fmt_vec(g * g)} = {fmt_vec(v)}",
    )
    used = v
    if amsgrad:
        used = np.maximum(st["max_exp_avg_sq"], v)
        s.add(
            "AMSGrad",
            f"v_max ← max(v_max, v) = max({fmt_vec(st['max_exp_avg_sq'])}, {fmt_vec(v)}) = "
            f"{fmt_vec(used)}; the step divides by v_max",
        )
    p1, p2 = np.power(np.array((beta1, beta2)), np.array((t, t))).tolist()
    bc1, bc2 = 1.0 - p1, 1.0 - p2
    neg_ss = -(lr / bc1)
    bc2_sqrt = math.sqrt(bc2)
    den = np.sqrt(used) / bc2_sqrt + eps
    vname = "v_max" if amsgrad else "v"
    s.add(
        "Bias correction",
        f"t = {fmt(t)}: 1 − β₁ᵗ = {fmt(bc1)}, 1 − β₂ᵗ = {fmt(bc2)}; m_hat = m/(1 − β₁ᵗ) = "
        f"{fmt_vec(m / bc1)}, v_hat = {vname}/(1 − β₂ᵗ) = {fmt_vec(used / bc2)}",
        s.arrow("velocity", m / bc1, "m_hat"),
    )
    eff = lr / den
    s.add(
        "Per-axis step size",
        f"effective learning rate γ / (√v_hat + ε) = {fmt(lr)} / {fmt_vec(den)} = "
        f"{fmt_vec(eff)} per axis: each axis is divided by its own gradient scale",
        s.box(eff * (m / bc1), "|γ m_hat/(√v_hat+ε)| per axis"),
    )
    delta = (m * neg_ss) / den
    how = f"−γ·m_hat/(√v_hat + ε) = −{fmt_vec(eff)} × {fmt_vec(m / bc1)}"
    if decoupled and wd != 0:
        delta = (s.theta * (1.0 - lr * wd) + delta) - s.theta
        how += " after the decay"
    return s.finish(delta, g0 * -lr, how)[0]


def _nadam(s: _Story, h: dict, st: dict, g: Array, lr: float) -> Array:
    beta1, beta2 = h["betas"]
    eps, wd, psi, decoupled = (
        h["eps"],
        h["weight_decay"],
        h["momentum_decay"],
        h["decoupled_weight_decay"],
    )
    t = np.float64(st["step"] + 1.0)
    g0 = g
    bc2 = 1.0 - power(beta2, t)
    g = s.l2(g, wd, not decoupled)
    if decoupled and wd != 0:
        s.decay_stage(lr, wd)
    mu = beta1 * (1.0 - 0.5 * power(0.96, t * psi))
    mu_next = beta1 * (1.0 - 0.5 * power(0.96, (t + 1) * psi))
    mu_product = st["mu_product"] * mu
    s.add(
        "Momentum schedule",
        f"μ_t = β₁(1 − ½·0.96^(tψ)) = {fmt(mu)}, μ_t+1 = {fmt(mu_next)}, "
        f"Π_t = Π_t−1·μ_t = {fmt(mu_product)}",
    )
    m, v = _moments(s, st, g, beta1, beta2)
    den = np.sqrt(v / bc2) + eps
    s.add(
        "Per-axis step size",
        f"den = √(v/(1 − β₂ᵗ)) + ε = {fmt_vec(den)}; effective learning rate γ/den = "
        f"{fmt_vec(lr / den)} per axis",
        s.box((lr / den) * (m / (1.0 - power(beta1, t))), "|γ m_hat/den| per axis"),
    )
    c1 = -lr * (1.0 - mu) / (1.0 - mu_product)
    c2 = (-lr * mu_next) / (1.0 - mu_product * mu_next)
    new = s.theta * (1.0 - lr * wd) if (wd != 0 and decoupled) else s.theta
    a = (g * c1) / den
    b = (m * c2) / den
    s.add(
        "Nesterov mix",
        f"gradient part −γ(1 − μ_t)/(1 − Π_t)·g/den = {fmt_vec(a)}; momentum part "
        f"−γμ_t+1/(1 − Π_tμ_t+1)·m/den = {fmt_vec(b)}",
        s.arrow("gd_step", a, "gradient part", "position"),
        s.arrow("velocity", b, "momentum part", "position"),
    )
    new = new + a
    new = new + b
    delta = new - s.theta
    return s.finish(delta, g0 * -lr, f"= {fmt_vec(a)} + {fmt_vec(b)}")[0]


def _radam(s: _Story, h: dict, st: dict, g: Array, lr: float) -> Array:
    beta1, beta2 = h["betas"]
    eps, wd, decoupled = h["eps"], h["weight_decay"], h["decoupled_weight_decay"]
    rho_inf = 2 / (1 - beta2) - 1
    t = np.float64(st["step"] + 1.0)
    g0 = g
    g = s.l2(g, wd, not decoupled)
    if decoupled and wd != 0:
        s.decay_stage(lr, wd)
    m, v = _moments(s, st, g, beta1, beta2)
    bc1 = 1.0 - power(beta1, t)
    bc2 = 1.0 - power(beta2, t)
    rho_t = rho_inf - 2 * t * power(beta2, t) / bc2
    base = m / bc1
    base = base * lr
    if rho_t > 5.0:
        rect = float(
            np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        )
        adaptive = np.sqrt(bc2) / (np.sqrt(v) + eps)
        s.add(
            "Variance is trusted",
            f"ρ_t = {fmt(rho_t)} > 5: rectifier r = {fmt(rect)}; per-axis scale "
            f"√(1 − β₂ᵗ)/(√v + ε) = {fmt_vec(adaptive)}",
            s.box(adaptive * base * rect, "|γ m_hat r √(1−β₂ᵗ)/(√v+ε)| per axis"),
        )
        step_vec = -((adaptive * base) * rect)
        how = f"−γ·m_hat·r·√(1 − β₂ᵗ)/(√v + ε) with γ·m_hat = {fmt_vec(base)}"
    else:
        s.add(
            "Warm-up",
            f"ρ_t = {fmt(rho_t)} ≤ 5: the variance estimate is not trusted yet, so this step "
            f"is momentum SGD on m_hat = m/(1 − β₁ᵗ) = {fmt_vec(m / bc1)}",
        )
        step_vec = -base
        how = f"−γ·m_hat = {fmt_vec(step_vec)}"
    if decoupled and wd != 0:
        delta = (s.theta * (1.0 - lr * wd) + step_vec) - s.theta
        how += " after the decay"
    else:
        delta = step_vec
    return s.finish(delta, g0 * -lr, how)[0]


def _adamax(s: _Story, h: dict, st: dict, g: Array, lr: float) -> Array:
    beta1, beta2 = h["betas"]
    eps = h["eps"]
    t = np.float64(st["step"] + 1.0)
    g = s.l2(g, h["weight_decay"])
    m = _first_moment(s, st, g, beta1)
    u = np.maximum(st["exp_inf"] * beta2, np.abs(g) + eps)
    s.add(
        "Infinity norm",
        f"u ← max(β₂u, |g| + ε) = max({fmt_vec(st['exp_inf'] * beta2)}, "
        f"{fmt_vec(np.abs(g) + eps)}) = {fmt_vec(u)}",
    )
    clr = lr / (1.0 - power(beta1, t))
    s.add(
        "Per-axis step size",
        f"γ/(1 − β₁ᵗ) / u = {fmt(clr)} / {fmt_vec(u)} = {fmt_vec(clr / u)} per axis",
        s.box((clr / u) * m, "|γ m/((1−β₁ᵗ) u)| per axis"),
    )
    delta = (m * -clr) / u
    return s.finish(delta, g * -lr, f"−γ/(1 − β₁ᵗ)·m/u = −{fmt_vec(clr / u)} × {fmt_vec(m)}")[0]


def _newton(s: _Story, h: dict, st: dict, g: Array, lr: float, hessian: Array | None) -> Array:
    if hessian is None:
        raise ValueError("newton is explained with the Hessian at θ: pass hessian= (2, 2)")
    hess = np.asarray(hessian, dtype=np.float64).reshape(2, 2)
    dmp = h["damping"]
    a, b, c, d = hess[0, 0] + dmp, hess[0, 1], hess[1, 0], hess[1, 1] + dmp
    s.add(
        "Curvature",
        f"Hessian H = [[{fmt(hess[0, 0])}, {fmt(b)}], [{fmt(c)}, {fmt(hess[1, 1])}]]"
        + (f", damped H + δI with δ = {fmt(dmp)}" if dmp else ""),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        det = a * d - b * c
        x = np.array(((d * g[0] - b * g[1]) / det, (a * g[1] - c * g[0]) / det))
    s.add(
        "Solve",
        f"(H + δI)⁻¹g = {fmt_vec(x)} (determinant {fmt(det)}): the gradient divided by the "
        "curvature",
        s.arrow("velocity", x, "(H+δI)⁻¹g", "position"),
    )
    return s.finish(x * -lr, g * -lr, f"−γ(H + δI)⁻¹g = −{fmt(lr)} × {fmt_vec(x)}")[0]


def _lion(s: _Story, h: dict, st: dict, g: Array, lr: float) -> Array:
    beta1, beta2 = h["betas"]
    wd = h["weight_decay"]
    c = st["exp_avg"] * beta1 + g * (1.0 - beta1)
    s.add(
        "Interpolate",
        f"c = β₁m + (1 − β₁)g = {fmt(beta1)} × {fmt_vec(st['exp_avg'])} + {fmt(1 - beta1)} × "
        f"{fmt_vec(g)} = {fmt_vec(c)}",
        s.arrow("velocity", c, "c"),
    )
    d = np.sign(c)
    how = f"−γ·sign(c) = −{fmt(lr)} × {fmt_vec(d)}"
    if wd != 0:
        d = d + wd * s.theta
        how = f"−γ(sign(c) + λθ) = −{fmt(lr)} × {fmt_vec(d)}"
    s.add(
        "Sign",
        f"sign(c) = {fmt_vec(np.sign(c))}: every axis moves by exactly γ",
        s.box(np.full(2, lr), "γ per axis"),
    )
    m = st["exp_avg"] * beta2 + g * (1.0 - beta2)
    s.add(
        "Momentum for next time",
        f"m ← β₂m + (1 − β₂)g = {fmt(beta2)} × {fmt_vec(st['exp_avg'])} + {fmt(1 - beta2)} × "
        f"{fmt_vec(g)} = {fmt_vec(m)} (used from the next step on)",
    )
    return s.finish(d * -lr, g * -lr, how)[0]


def explain(
    optimizer_name: str,
    params: dict[str, Any],
    state: Any,
    theta: Any,
    grad: Any,
    lr: float | None = None,
    *,
    hessian: Any = None,
    true_gradient: Any = None,
    noise: Any = None,
    batch: tuple[int, int] | None = None,
    batch_gradient: Any = None,
) -> Explanation:
    """The next update of one run, in stages, from its real optimizer state.

    ``params`` are the run's torch-style hyperparameters (missing ones take their defaults),
    ``state`` the run's own state rows (from ``Simulation.run_state``), ``theta`` and ``grad``
    the position and the gradient this step uses (noise included), ``lr`` the learning rate
    this step uses (a schedule's value; None = the params' lr). ``true_gradient``/``noise``
    only make the gradient caption tell the two apart, as ``batch`` = (k, m) and
    ``batch_gradient`` do for a mini-batch of k of m points. Newton needs ``hessian`` (2, 2).
    Raises ValueError for an unknown optimizer, bad params or a state of another optimizer.
    """
    meta = _opt.create(optimizer_name, **params)
    h = meta.hyper
    st = _state_rows(optimizer_name, state)
    theta = _row(theta)
    g = _row(grad)
    if theta.shape != (2,) or g.shape != (2,):
        raise ValueError(f"theta and grad must be two numbers each, got {theta.shape}, {g.shape}")
    lr = float(h["lr"] if lr is None else lr)
    s = _Story(theta)
    s.gradient(
        g,
        None if true_gradient is None else _row(true_gradient),
        None if noise is None else _row(noise),
        batch,
        None if batch_gradient is None else _row(batch_gradient),
    )
    rules = {
        "sgd": _sgd,
        "adagrad": _adagrad,
        "rmsprop": _rmsprop,
        "adadelta": _adadelta,
        "adam": lambda *a: _adam(*a, decoupled=h["decoupled_weight_decay"]),
        "adamw": lambda *a: _adam(*a, decoupled=True),
        "nadam": _nadam,
        "radam": _radam,
        "adamax": _adamax,
        "newton": lambda *a: _newton(*a, hessian=hessian),
        "lion": _lion,
    }
    with np.errstate(all="ignore"):
        delta = np.asarray(rules[optimizer_name](s, h, st, g, lr), dtype=np.float64)
        new = theta + delta
    return Explanation(
        optimizer_name, int(st["step"]) + 1, theta, g, lr, tuple(s.stages), delta, new
    )


def explain_run(run: Any, data_size: int | None = None) -> Explanation:
    """``explain`` of what ``Simulation.run_state`` says of a run's next step: its state,
    position, the exact gradient the step uses (noise, mini-batch) and its learning rate.
    ``data_size`` (the surface's number of data points) lets a mini-batch caption say "k of m".
    """
    batch = None
    if run.batch is not None and data_size is not None:
        batch = (len(run.batch), int(data_size))
    return explain(
        run.optimizer,
        run.params,
        run.state,
        run.position,
        run.gradient,
        run.lr,
        hessian=run.hessian,
        true_gradient=run.true_gradient,
        noise=run.noise,
        batch=batch,
        batch_gradient=run.batch_gradient,
    )


# ------------------------------------------------------------------------------- internals
_HYPER_CACHE: dict[Any, dict[str, Any]] = {}


def _hyper(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validated hyperparameters, cached: a view asks for internals of every ball each frame,
    and validation costs more than the arithmetic."""
    try:
        key = (name, tuple(sorted((k, _freeze(v)) for k, v in params.items())))
        hash(key)
    except TypeError:
        return _opt.create(name, **params).hyper
    got = _HYPER_CACHE.get(key)
    if got is None:
        if len(_HYPER_CACHE) > 256:
            _HYPER_CACHE.clear()
        got = _HYPER_CACHE[key] = _opt.create(name, **params).hyper
    return got


def _freeze(v: Any) -> Any:
    return tuple(v) if isinstance(v, list | tuple) else v


ADAPTIVE = ("adagrad", "rmsprop", "adadelta", "adam", "adamw", "nadam", "radam", "adamax")


def internals(
    optimizer_name: str,
    params: dict[str, Any],
    state: Any,
    grad: Any = None,
    lr: float | None = None,
) -> Internals | None:
    """Per-axis second-moment accumulator and effective learning rate of one run, as of its
    last step; None for optimizers without one (SGD, Newton, Lion) or before a first step
    (an empty accumulator means no scale yet).

    The effective learning rate is the factor the rule multiplies its (first-moment) gradient
    by on each axis: γ_t/(√s + ε) for Adagrad (times g), γ/den for RMSprop (times g),
    γ√(u + ε)/√(v + ε) for Adadelta (times g), γ/(√v_hat + ε) for Adam/AdamW/AMSGrad and NAdam
    (times m_hat = m/(1 − β₁ᵗ), v_hat = v/(1 − β₂ᵗ), bias-corrected as Adam does), γ·r·√(1 − β₂ᵗ)/
    (√v + ε) for RAdam once rectified (γ before), γ/u for Adamax (times m_hat). For the rules that
    multiply g, ``grad`` is the gradient at the ball (zeros if None; an L2 weight decay's λθ
    is not added: the box shows what the surface's slope does). ``step_size`` is
    |effective_lr × moment|: the per-axis step the rule would take from that moment.
    """
    if optimizer_name not in ADAPTIVE:
        return None
    h = _hyper(optimizer_name, params)
    st = _state_rows(optimizer_name, state)
    t = st["step"]
    if t < 1 and not (optimizer_name == "adagrad" and h["initial_accumulator_value"] > 0):
        return None
    lr = float(h["lr"] if lr is None else lr)
    g = np.zeros(2) if grad is None else _row(grad)
    with np.errstate(all="ignore"):
        if optimizer_name == "adagrad":
            acc = st["sum"]
            clr = lr / (1 + t * h["lr_decay"])  # the next step's γ_t (t + 1 − 1)
            eff = clr / (np.sqrt(acc) + h["eps"])
            out = (acc, "s = Σg²", eff, g, "g")
        elif optimizer_name == "rmsprop":
            acc = st["square_avg"]
            if h["centered"]:
                den = np.sqrt(acc - st["grad_avg"] ** 2) + h["eps"]
            else:
                den = np.sqrt(acc) + h["eps"]
            out = (acc, "v (running mean of g²)", lr / den, g, "g")
        elif optimizer_name == "adadelta":
            acc = st["square_avg"]
            eff = lr * np.sqrt(st["acc_delta"] + h["eps"]) / np.sqrt(acc + h["eps"])
            out = (acc, "v (running mean of g²)", eff, g, "g")
        else:
            beta1, beta2 = h["betas"]
            bc1 = 1.0 - power(beta1, np.float64(t))
            bc2 = 1.0 - power(beta2, np.float64(t))
            m_hat = st["exp_avg"] / bc1
            if optimizer_name == "adamax":
                acc = st["exp_inf"]
                out = (acc, "u (decaying max of |g|)", lr / acc, m_hat, "m_hat")
            elif optimizer_name == "radam":
                acc = st["exp_avg_sq"] / bc2
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * t * power(beta2, np.float64(t)) / bc2
                if rho_t > 5.0:
                    r = math.sqrt(
                        (rho_t - 4) * (rho_t - 2) * rho_inf
                        / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                    )  # fmt: skip
                    eff = lr * r * math.sqrt(bc2) / (np.sqrt(st["exp_avg_sq"]) + h["eps"])
                else:
                    eff = np.full(2, lr)
                out = (acc, "v_hat = v/(1 − β₂ᵗ)", eff, m_hat, "m_hat")
            else:
                v = st["exp_avg_sq"]
                label = "v_hat = v/(1 − β₂ᵗ)"
                if optimizer_name in ("adam", "adamw") and h["amsgrad"]:
                    v = st["max_exp_avg_sq"]
                    label = "v_hat = v_max/(1 − β₂ᵗ)"
                acc = v / bc2
                out = (acc, label, lr / (np.sqrt(acc) + h["eps"]), m_hat, "m_hat")
        acc, acc_label, eff, moment, moment_label = out
        size = np.abs(eff * moment)
    return Internals(
        optimizer_name,
        np.array(acc, dtype=float),
        acc_label,
        np.array(eff, dtype=float),
        np.array(moment, dtype=float),
        moment_label,
        np.array(size, dtype=float),
    )
