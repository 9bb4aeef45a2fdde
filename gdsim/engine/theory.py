"""What theory predicts for gradient descent on a quadratic, to set beside what a run measures.

On f(p) = ½ (p - p*)ᵀ H (p - p*) every method of the SGD family is linear in the distance to
the minimum, one eigen-direction of H at a time, so its convergence rate is a number that can
be computed before the run and measured after it. This module computes both:

- the curvatures mu <= L (eigenvalues of H) and the condition number k = L / mu;
- plain GD's optimal learning rate 2 / (L + mu) and its rate (k - 1) / (k + 1);
- Polyak's heavy ball optimum alpha = (2 / (√L + √mu))², beta = ((√k - 1) / (√k + 1))² and its
  rate (√k - 1) / (√k + 1);
- the rate predicted for *any* lr and momentum (the spectral radius of the heavy-ball iteration
  matrix, worst eigen-direction; plain GD is momentum 0: max |1 - lr λ|);
- the rate measured from a loss history (the loss gap shrinks by rate² per step, because the
  loss is quadratic in the distance);
- the learning-rate ceiling 2 / λ_max of the Hessian at any point: above it plain GD overshoots
  along the steepest direction by more than it gains, on any surface, locally.

torch's SGD with momentum (v = μ v + g; p -= lr v) is exactly the heavy ball with alpha = lr
and beta = μ (substitute v = (p_prev - p) / lr), which is why its parameters can be set from
here. Pure NumPy: no Qt, no files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "QuadraticTheory",
    "curvatures",
    "gd_rate",
    "heavy_ball_rate",
    "is_quadratic",
    "lr_ceiling",
    "measured_rate",
    "predicted_gaps",
    "quadratic_minimum",
    "quadratic_theory",
]


class QuadraticTheory(NamedTuple):
    """The optimal settings and rates for a positive definite quadratic with curvatures mu, L."""

    mu: float
    L: float
    kappa: float  # condition number L / mu
    gd_lr: float  # 2 / (L + mu)
    gd_rate: float  # (k - 1) / (k + 1): distance shrinks by this factor per step
    hb_lr: float  # heavy ball alpha = (2 / (√L + √mu))²
    hb_momentum: float  # heavy ball beta = ((√k - 1) / (√k + 1))²
    hb_rate: float  # (√k - 1) / (√k + 1)


def _symmetric(hessian: np.ndarray) -> np.ndarray:
    h = np.asarray(hessian, dtype=np.float64)
    if h.shape[-2:] != (h.shape[-1], h.shape[-1]):
        raise ValueError(f"a Hessian must be square, got shape {h.shape}")
    return 0.5 * (h + np.swapaxes(h, -1, -2))


def curvatures(hessian: np.ndarray) -> np.ndarray:
    """Eigenvalues of a Hessian (or of a stack of them), ascending; NaN where it is not finite."""
    h = _symmetric(hessian)
    finite = np.all(np.isfinite(h), axis=(-1, -2))
    out = np.full(h.shape[:-1], np.nan)
    if np.any(finite):
        out[finite] = np.linalg.eigvalsh(h[finite])
    return out


def lr_ceiling(hessian: np.ndarray) -> float:
    """2 / λ_max of the Hessian: plain GD with a larger lr overshoots along the steepest
    direction by more than it gains there. inf where λ_max <= 0 (no curvature to overshoot:
    flat, or curving down); NaN where the Hessian is not finite."""
    lam = curvatures(hessian)
    top = float(lam[-1])
    if not math.isfinite(top):
        return math.nan
    return math.inf if top <= 0 else 2.0 / top


def quadratic_theory(hessian: np.ndarray) -> QuadraticTheory:
    """Optimal GD and heavy-ball settings for the quadratic with this (constant) Hessian.

    Raises ValueError unless the Hessian is finite and positive definite: with a flat or
    downward direction there is no minimum to converge to, so no optimal rate either.
    """
    lam = curvatures(hessian)
    if not np.all(np.isfinite(lam)):
        raise ValueError("the Hessian is not finite")
    mu, big = float(lam[0]), float(lam[-1])
    if mu <= 0:
        raise ValueError(
            f"the Hessian is not positive definite (eigenvalues {mu:.4g}, {big:.4g}): "
            "there is no minimum to converge to"
        )
    kappa = big / mu
    root = math.sqrt(kappa)
    return QuadraticTheory(
        mu=mu,
        L=big,
        kappa=kappa,
        gd_lr=2.0 / (big + mu),
        gd_rate=(kappa - 1.0) / (kappa + 1.0),
        hb_lr=(2.0 / (math.sqrt(big) + math.sqrt(mu))) ** 2,
        hb_momentum=((root - 1.0) / (root + 1.0)) ** 2,
        hb_rate=(root - 1.0) / (root + 1.0),
    )


def heavy_ball_rate(eigenvalues: Sequence[float] | np.ndarray, lr: float, momentum: float) -> float:
    """Per-step contraction of the distance for the heavy ball (torch SGD with momentum).

    Along an eigen-direction with curvature λ the error obeys
    e_{k+1} = (1 + β - α λ) e_k - β e_{k-1}, whose iteration matrix [[1 + β - αλ, -β], [1, 0]]
    has the roots of z² - (1 + β - αλ) z + β as eigenvalues; the rate is the largest root
    modulus over all directions (> 1: diverges). With momentum 0 it is max |1 - lr λ|.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    worst = 0.0
    for value in lam:
        trace = 1.0 + momentum - lr * float(value)
        roots = np.roots([1.0, -trace, momentum]) if momentum != 0 else np.array([trace])
        worst = max(worst, float(np.max(np.abs(roots))))
    return worst


def gd_rate(eigenvalues: Sequence[float] | np.ndarray, lr: float) -> float:
    """Plain GD's per-step contraction of the distance: max |1 - lr λ| over the curvatures."""
    lam = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    return float(np.max(np.abs(1.0 - lr * lam)))


def is_quadratic(
    hessian: Callable[[np.ndarray], np.ndarray],
    box: tuple[tuple[float, float], tuple[float, float]],
    *,
    rtol: float = 1e-9,
) -> np.ndarray | None:
    """The constant Hessian if `hessian` is the same at a spread of points of the box, else None.

    A function is quadratic exactly when its Hessian is constant; nine points (corners, edge
    midpoints and an off-centre point) catch every non-quadratic surface of the catalogue.
    """
    (x0, x1), (y0, y1) = box
    fx = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.3137])
    fy = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 1.0, 0.7211])
    points = np.stack([x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)], axis=-1)
    h = np.asarray(hessian(points), dtype=np.float64)
    if not np.all(np.isfinite(h)):
        return None
    scale = max(float(np.max(np.abs(h))), 1e-300)
    if np.max(np.abs(h - h[0])) > rtol * scale:
        return None
    return _symmetric(h[0])


def measured_rate(
    losses: Sequence[float] | np.ndarray, loss_min: float, *, tail: float = 0.5
) -> float | None:
    """Per-step contraction of the distance, fitted to a loss history.

    On a quadratic the gap loss - loss_min is quadratic in the distance, so it shrinks by rate²
    per step: rate = exp(slope / 2) of a least-squares line through log(gap) over the last
    `tail` fraction of the usable history. Usable: finite, and the gap above rounding noise of
    loss_min (below it the log measures float rounding, not the optimizer). None when fewer
    than 8 steps are usable.
    """
    y = np.asarray(losses, dtype=np.float64).reshape(-1)
    gap = y - float(loss_min)
    noise = 64 * np.finfo(np.float64).eps * max(abs(float(loss_min)), 1e-300)
    usable = np.isfinite(gap) & (gap > noise)
    # The usable prefix: once the gap has reached the noise floor the rest is rounding.
    stop = int(np.argmin(usable)) if not usable.all() else len(gap)
    if stop < 8:
        return None
    first = min(int(stop * (1.0 - tail)), stop - 8)
    k = np.arange(first, stop, dtype=np.float64)
    slope = float(np.polyfit(k, np.log(gap[first:stop]), 1)[0])
    return math.exp(slope / 2.0)


def predicted_gaps(gap0: float, rate: float, steps: int) -> np.ndarray:
    """gap0 · rate^(2k) for k = 0 .. steps-1: the loss gap theory predicts after k steps."""
    k = np.arange(int(steps), dtype=np.float64)
    with np.errstate(all="ignore"):
        return float(gap0) * np.power(float(rate), 2.0 * k)


def quadratic_minimum(
    value: Callable[[np.ndarray], np.ndarray],
    gradient: Callable[[np.ndarray], np.ndarray],
    hessian: np.ndarray,
    point: np.ndarray,
) -> tuple[np.ndarray, float]:
    """The minimiser p* = p - H⁻¹ ∇f(p) of a quadratic with positive definite Hessian H, and
    f(p*): one Newton step from any point lands on it exactly (up to rounding).

    H may be 1 x 1 for a function of x only; then only x moves. ValueError if H is not
    positive definite (no minimum).
    """
    h = _symmetric(hessian)
    lam = curvatures(h)
    if not (np.all(np.isfinite(lam)) and lam[0] > 0):
        raise ValueError("the Hessian is not positive definite: no minimum")
    p = np.asarray(point, dtype=np.float64).reshape(2).copy()
    d = h.shape[-1]
    g = np.asarray(gradient(p[None, :]), dtype=np.float64).reshape(2)[:d]
    p[:d] -= np.linalg.solve(h, g)
    return p, float(np.asarray(value(p[None, :])).reshape(-1)[0])
