"""Two-parameter neural-network losses on generated data: the surface *is* the training loss.

Why two parameters: the views draw a surface over a plane, so a model with exactly two weights
can be shown honestly (no projection onto random directions). Each model's (x, y) coordinates
are its two parameters, and f(x, y) is the exact mean loss over a small data set generated from
a seed (no downloads), so a "mini-batch" is a real subset of real points and mini-batch noise is
the real thing, not a stand-in.

The models (``Dataset.kind``):

* ``"logistic"``: p = σ(w·u + b) on two 1-D Gaussian blobs labelled 0/1, mean binary
  cross-entropy written as softplus(z) - y·z (softplus = logaddexp(0, z)), which never takes the
  log of a rounded-to-zero probability. Coordinates (w, b). Convex.
* ``"linear"``: ŷ = w·u + b, mean squared error (torch's MSELoss: no ½). The Hessian is
  2·[[E u², E u], [E u, 1]], so the data's offset and spread set the condition number: a ravine
  whose shape comes from the data, as in real regression with unnormalised inputs.
* ``"tanh"``: ŷ = w₂·tanh(w₁·u), mean squared error. tanh is odd, so (w₁, w₂) and (-w₁, -w₂)
  give the same network: two symmetric minima with a saddle at the origin between them.

Everything is closed form (value, gradient, Hessian), vectorised over points (..., 2) and over
any subset of the data, and evaluated in blocks of points so a 600 x 600 grid over 64 data
points never holds one huge temporary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["KINDS", "BatchStream", "Dataset", "make_dataset", "newton_minimum"]

KINDS = ("logistic", "linear", "tanh")

#: Points evaluated at once: keeps the (points x data) temporaries to a few MB.
_BLOCK = 4096


@dataclass(frozen=True, eq=False)
class Dataset:
    """A generated data set and the model trained on it (its loss is a surface's f).

    ``x`` (m,) are inputs, ``y`` (m,) targets (0/1 labels for ``"logistic"``). Arrays are
    read-only float64. ``idx`` arguments pick a subset: a 1-D array of data indices shared by
    every point, or one row of indices per point (shape ``points.shape[:-1] + (k,)``); None is
    the whole set. Equality is identity, like Surface.
    """

    kind: str
    x: np.ndarray
    y: np.ndarray
    seed: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; valid: {', '.join(KINDS)}")
        x = np.array(self.x, dtype=np.float64).reshape(-1)
        y = np.array(self.y, dtype=np.float64).reshape(-1)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"x and y must be non-empty and equally long, got {len(x)}, {len(y)}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("data must be finite")
        for a in (x, y):
            a.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt through __init__, so the arrays come back read-only and checked.
        return (Dataset, (self.kind, self.x, self.y, self.seed))

    @property
    def m(self) -> int:
        """Number of data points."""
        return len(self.x)

    # ------------------------------------------------------------------ the model itself
    def predict(self, p0: np.ndarray | float, p1: np.ndarray | float, xs: np.ndarray) -> np.ndarray:
        """The model's output at inputs ``xs`` for parameters (p0, p1): what the data panel
        draws. p0, p1 broadcast against xs (pass p0[:, None] for one curve per row).

        logistic: σ(w·u + b), a probability; linear: w·u + b; tanh: w₂·tanh(w₁·u).
        """
        p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
        xs = np.asarray(xs, dtype=np.float64)
        if self.kind == "logistic":
            return _sigmoid(p0 * xs + p1)
        if self.kind == "linear":
            return p0 * xs + p1
        return p1 * np.tanh(p0 * xs)

    # ------------------------------------------------------------------ the loss
    def value(self, points: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Mean loss over the data (or the subset ``idx``) at parameter points (..., 2)."""
        return self._blocked(self._value, points, idx, ())

    def gradient(self, points: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Gradient of the mean loss, (..., 2)."""
        return self._blocked(self._gradient, points, idx, (2,))

    def hessian(self, points: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """Hessian of the mean loss, (..., 2, 2), symmetric."""
        return self._blocked(self._hessian, points, idx, (2, 2))

    # ------------------------------------------------------------------ internals
    def _blocked(
        self,
        fn: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
        points: np.ndarray,
        idx: np.ndarray | None,
        tail: tuple[int, ...],
    ) -> np.ndarray:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 0 or pts.shape[-1] != 2:
            raise ValueError(f"points must have shape (..., 2), got {pts.shape}")
        lead = pts.shape[:-1]
        flat = pts.reshape(-1, 2)
        n = len(flat)
        if idx is None:
            xs, ys = self.x[None], self.y[None]
            per_point = False
        else:
            ix = np.asarray(idx)
            if ix.size == 0 or not np.issubdtype(ix.dtype, np.integer):
                raise ValueError("idx must be a non-empty array of integer data indices")
            if ix.min() < -self.m or ix.max() >= self.m:
                raise ValueError(f"idx out of range for {self.m} data points")
            if ix.ndim == 1:
                xs, ys = self.x[ix][None], self.y[ix][None]
                per_point = False
            elif ix.shape[:-1] == lead:
                rows = ix.reshape(n, ix.shape[-1])
                xs, ys = self.x[rows], self.y[rows]
                per_point = True
            else:
                raise ValueError(
                    f"idx must be (k,) or points.shape[:-1] + (k,) = {(*lead, -1)}, got {ix.shape}"
                )
        out = np.empty((n, *tail))
        step = max(1, _BLOCK * 64 // max(xs.shape[-1], 1))
        with np.errstate(over="ignore", invalid="ignore"):
            for a in range(0, n, step):
                b = min(n, a + step)
                p = flat[a:b]
                bx, by = (xs[a:b], ys[a:b]) if per_point else (xs, ys)
                out[a:b] = fn(p[:, 0:1], p[:, 1:2], bx, by)
        return out.reshape((*lead, *tail))

    def _value(self, p0: np.ndarray, p1: np.ndarray, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.kind == "logistic":
            z = p0 * u + p1
            return np.mean(np.logaddexp(0.0, z) - y * z, axis=-1)
        r = self._residual(p0, p1, u, y)
        return np.mean(r * r, axis=-1)

    def _residual(self, p0: np.ndarray, p1: np.ndarray, u: np.ndarray, y: np.ndarray):
        if self.kind == "linear":
            return p0 * u + p1 - y
        return p1 * np.tanh(p0 * u) - y

    def _gradient(self, p0: np.ndarray, p1: np.ndarray, u: np.ndarray, y: np.ndarray):
        if self.kind == "logistic":
            e = _sigmoid(p0 * u + p1) - y
            return np.stack([np.mean(e * u, axis=-1), np.mean(e, axis=-1)], axis=-1)
        if self.kind == "linear":
            r = p0 * u + p1 - y
            return np.stack([2 * np.mean(r * u, axis=-1), 2 * np.mean(r, axis=-1)], axis=-1)
        t = np.tanh(p0 * u)
        r = p1 * t - y
        d0 = 2 * np.mean(r * p1 * (1 - t * t) * u, axis=-1)
        return np.stack([d0, 2 * np.mean(r * t, axis=-1)], axis=-1)

    def _hessian(self, p0: np.ndarray, p1: np.ndarray, u: np.ndarray, y: np.ndarray):
        if self.kind == "logistic":
            # σ(1 - σ) = ¼ sech²(z/2): no cancellation where σ rounds to 0 or 1
            c = 0.25 / np.cosh(0.5 * (p0 * u + p1)) ** 2
            h00, h01, h11 = (np.mean(c * u * u, -1), np.mean(c * u, -1), np.mean(c, -1))
        elif self.kind == "linear":
            ones = np.ones_like(p0 * u)
            h00 = 2 * np.mean(ones * u * u, -1)
            h01 = 2 * np.mean(ones * u, -1)
            h11 = 2 * np.mean(ones, -1)
        else:
            t = np.tanh(p0 * u)
            s = 1 - t * t  # sech²(w₁u) = d tanh / d(w₁u)
            r = p1 * t - y
            h00 = np.mean(2 * (p1 * s * u) ** 2 - 4 * r * p1 * t * s * u * u, -1)
            h01 = np.mean(2 * s * u * (p1 * t + r), -1)
            h11 = np.mean(2 * t * t, -1)
        out = np.empty((*h00.shape, 2, 2))
        out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1] = h00, h01, h01, h11
        return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = ½(1 + tanh(z/2)): no overflow for any z, unlike 1 / (1 + exp(-z))."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


# ---------------------------------------------------------------------------------- batches
#: Mixed into a batch stream's seed, so it differs from the noise stream of the same run.
_BATCH_SALT = 0xBA7C4


class BatchStream:
    """Which data points each step of one run sees: PyTorch's DataLoader(shuffle=True).

    Every epoch is a fresh random permutation of the m points, cut into consecutive batches of
    k; like DataLoader's default ``drop_last=False`` the last batch of an epoch keeps the
    m mod k points that are left (a smaller, noisier batch). The next epoch's permutation is
    drawn as soon as an epoch ends, so the next batch is always known (views draw its surface).
    Setting ``k`` mid-epoch goes on from the same place in the same permutation.

    The generator is ``default_rng([seed, stream, salt])``: keyed like a run's noise
    (``default_rng([seed, stream])``) but a different stream, so a run's batches never depend on
    its noise, on other runs, or on how its steps are chunked; the simulation and the sweep
    draw the same batches for the same (seed, stream).
    """

    __slots__ = ("k", "m", "perm", "pos", "rng")

    def __init__(self, m: int, k: int, seed: int, stream: int) -> None:
        if not 1 <= k < m:
            raise ValueError(f"batch size must be in [1, {m - 1}] for {m} points, got {k}")
        self.m, self.k = m, k
        self.rng = np.random.default_rng([seed, stream, _BATCH_SALT])
        self.perm = self.rng.permutation(m)
        self.pos = 0

    def current(self) -> np.ndarray:
        """Data indices of the batch the next step uses."""
        return self.perm[self.pos : self.pos + self.k]

    def advance(self) -> None:
        """One step taken: on to the next batch (and a new permutation after the last)."""
        self.pos += self.k
        if self.pos >= self.m:
            self.perm = self.rng.permutation(self.m)
            self.pos = 0

    def save(self) -> tuple[object, np.ndarray, int]:
        return self.rng.bit_generator.state, self.perm, self.pos

    def load(self, saved: tuple[object, np.ndarray, int]) -> None:
        self.rng.bit_generator.state, self.perm, self.pos = saved  # type: ignore[assignment]


# ---------------------------------------------------------------------------------- data
#: Points per data set: small enough to see every one, large enough for batches of 1 to 64.
N_POINTS = 64


def make_dataset(kind: str, seed: int, *, offset: float = 2.0, spread: float = 1.0) -> Dataset:
    """The data set of model ``kind`` for ``seed`` (the same seed always gives the same points).

    logistic: 32 points of class 0 around u = -0.5 and 32 of class 1 around u = 1.5 (σ = 0.8),
    overlapping, so the cross-entropy has a finite minimum (separable data would send w to ∞).
    linear: u = offset + spread·z with z standardised to sample mean 0 and std 1 exactly, so
    the Hessian 2·[[offset² + spread², offset], [offset, 1]] is set by the two parameters alone;
    targets 1.5·u - 1 plus noise (σ = 0.5). tanh: u uniform in [-3, 3], targets 1.2·tanh(1.5·u)
    plus noise (σ = 0.1).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(KINDS)}")
    if isinstance(seed, bool) or not float(seed).is_integer() or not 0 <= seed < 2**63:
        raise ValueError(f"Invalid seed: {seed!r} (seed must be a whole number >= 0)")
    rng = np.random.default_rng(int(seed))
    half = N_POINTS // 2
    if kind == "logistic":
        x = np.concatenate([rng.normal(-1.0, 1.0, half), rng.normal(1.0, 1.0, half)])
        y = np.concatenate([np.zeros(half), np.ones(half)])
    elif kind == "linear":
        for name, v in (("offset", offset), ("spread", spread)):
            if not math.isfinite(v):
                raise ValueError(f"Invalid {name}: {v!r} ({name} must be finite)")
        if not spread > 0:
            raise ValueError(f"Invalid spread: {spread!r} (spread must be > 0)")
        z = rng.standard_normal(N_POINTS)
        z = (z - z.mean()) / z.std()
        x = offset + spread * z
        y = 1.5 * x - 1.0 + rng.normal(0.0, 0.5, N_POINTS)
    else:
        x = rng.uniform(-3.0, 3.0, N_POINTS)
        y = 1.2 * np.tanh(1.5 * x) + rng.normal(0.0, 0.1, N_POINTS)
    return Dataset(kind, x, y, int(seed))


def newton_minimum(data: Dataset, start: tuple[float, float], iterations: int = 100) -> np.ndarray:
    """A minimum of the data's loss polished to full precision by damped Newton steps.

    Halving the step until the loss does not rise keeps Newton from jumping over the valley far
    from it; near the minimum full steps converge quadratically. Raises ValueError if it does not
    converge (|grad| stays above ~1e-13 x the loss scale) or the Hessian there is not positive
    definite, so a catalogue entry can never claim a false minimum.
    """
    p = np.array(start, dtype=np.float64)
    f = float(data.value(p))
    for _ in range(iterations):
        g = data.gradient(p)
        h = data.hessian(p)
        if np.linalg.norm(g) < 1e-15:
            break
        try:
            d = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            d = g
        if not np.all(np.linalg.eigvalsh(h) > 0):
            d = g  # not convex here yet: a gradient step, with the same line search
        t, newton = 1.0, d is not g
        while t > 1e-12:
            q = p - t * d
            fq = float(data.value(q))
            # Near the minimum f changes below its rounding error; there a Newton step is
            # judged by the gradient it leaves, which still shrinks quadratically.
            if fq < f or (newton and np.linalg.norm(data.gradient(q)) < np.linalg.norm(g)):
                break
            t *= 0.5
        if np.array_equal(q, p):
            break
        p, f = q, fq
    g = data.gradient(p)
    scale = max(1.0, float(np.abs(data.hessian(p)).max()))
    if not (np.linalg.norm(g) <= 1e-12 * scale and np.all(np.linalg.eigvalsh(data.hessian(p)) > 0)):
        raise ValueError(
            f"no minimum found from {start} for the {data.kind} data of seed {data.seed}"
            f" (ended at {p.tolist()}, |grad| = {np.linalg.norm(g):.3g})"
        )
    return p
