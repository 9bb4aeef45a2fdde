"""Pure-NumPy geometry the views share: display heights, contour segments, trail thinning, arrows.

Nothing here touches Qt, so it is cheap to test and the 2-D and 3-D views are guaranteed to
agree on what "height", "level" and "arrow" mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeightScale:
    """How a loss value becomes a display height (and a colour position).

    Linear: h = z. Log: h = log10(max(z - zmin, 0) + eps), so a surface whose values span many
    decades (Goldstein-Price, Rosenbrock) shows its valley floor instead of one tall wall.
    `eps` is a low quantile (0.1 %) of the grid's positive heights above its minimum: fine enough
    to show the floor's shape, coarse enough that the grid minimum (or a rounding-error
    neighbour of it) is not a needle reaching down towards -inf.
    """

    log: bool
    zmin: float
    eps: float
    hmin: float
    hmax: float

    @classmethod
    def fit(cls, z: np.ndarray, *, log: bool) -> HeightScale:
        finite = np.asarray(z, dtype=np.float64)[np.isfinite(z)]
        if finite.size == 0:
            return cls(log=log, zmin=0.0, eps=1.0, hmin=0.0, hmax=1.0)
        zmin, zmax = float(finite.min()), float(finite.max())
        if not log:
            hmin, hmax = zmin, zmax
            eps = 1.0
        else:
            shifted = finite - zmin
            positive = shifted[shifted > 0]
            span = zmax - zmin
            eps = float(np.quantile(positive, 1e-3)) if positive.size else 1.0
            eps = max(eps, span * 1e-12, np.finfo(np.float64).tiny)
            hmin = float(np.log10(eps))
            hmax = float(np.log10(zmax - zmin + eps))
        if not hmax > hmin:  # a flat surface: give it a unit range so nothing divides by zero
            hmax = hmin + 1.0
        return cls(log=log, zmin=zmin, eps=eps, hmin=hmin, hmax=hmax)

    def height(self, z: np.ndarray | float) -> np.ndarray:
        """Display height of loss values. NaN stays NaN; +inf becomes a very large height."""
        z = np.asarray(z, dtype=np.float64)
        if not self.log:
            return z.copy()
        with np.errstate(invalid="ignore"):
            return np.log10(np.maximum(z - self.zmin, 0.0) + self.eps)

    def unit(self, z: np.ndarray | float) -> np.ndarray:
        """Loss values -> [0, 1] along the colour map (clipped)."""
        return np.clip((self.height(z) - self.hmin) / (self.hmax - self.hmin), 0.0, 1.0)

    def levels(self, n: int) -> np.ndarray:
        """n contour levels in display heights, evenly spaced (so log-spaced in z when log)."""
        if n <= 0:
            return np.empty(0)
        return np.linspace(self.hmin, self.hmax, n + 2)[1:-1]


def clean_grid(z: np.ndarray) -> np.ndarray:
    """A float64 copy with NaN/inf replaced by the finite extremes, so contours and meshes hold."""
    z = np.array(z, dtype=np.float64)
    bad = ~np.isfinite(z)
    if bad.any():
        finite = z[~bad]
        hi = float(finite.max()) if finite.size else 0.0
        lo = float(finite.min()) if finite.size else 0.0
        z[np.isnan(z) | (z == np.inf)] = hi
        z[z == -np.inf] = lo
    return z


def _crossing(level: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where along the edge from value a to value b the level is crossed, as a fraction."""
    d = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d != 0, (level - a) / d, 0.5)
    return np.clip(t, 0.0, 1.0)


# Edge k of a cell joins corner _EDGE_CORNERS[k][0] to [1]; corners: 0=(i,j) 1=(i+1,j)
# 2=(i+1,j+1) 3=(i,j+1). Pairs of crossed edges that make a segment in a cell with 2 crossings.
_PAIRS = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


def contour_segments(
    x: np.ndarray, y: np.ndarray, h: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Marching squares over the grid h[i, j] = f(x[i], y[j]), vectorised per level.

    Returns (segments (m, 2, 2) as [[x0, y0], [x1, y1]], level_index (m,)). Saddle cells are
    resolved by the cell-centre mean. pyqtgraph's isocurve is a Python loop (about 0.2 s for 20
    levels on 200x200); this is about a hundred times faster, which matters when a slider
    reshapes the surface.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    v = (h[:-1, :-1], h[1:, :-1], h[1:, 1:], h[:-1, 1:])
    out_segments: list[np.ndarray] = []
    out_levels: list[np.ndarray] = []
    for li, level in enumerate(np.asarray(levels, dtype=np.float64)):
        above = [vk > level for vk in v]
        code = above[0].astype(np.uint8) | (above[1] << 1) | (above[2] << 2) | (above[3] << 3)
        ii, jj = np.nonzero((code != 0) & (code != 15))
        if ii.size == 0:
            continue
        c = [vk[ii, jj] for vk in v]
        b = [ak[ii, jj] for ak in above]
        x0, x1, y0, y1 = x[ii], x[ii + 1], y[jj], y[jj + 1]

        t0, t1 = _crossing(level, c[0], c[1]), _crossing(level, c[1], c[2])
        t2, t3 = _crossing(level, c[3], c[2]), _crossing(level, c[0], c[3])
        pts = (
            np.stack([x0 + t0 * (x1 - x0), y0], axis=-1),
            np.stack([x1, y0 + t1 * (y1 - y0)], axis=-1),
            np.stack([x0 + t2 * (x1 - x0), y1], axis=-1),
            np.stack([x0, y0 + t3 * (y1 - y0)], axis=-1),
        )
        crossed = (b[0] != b[1], b[1] != b[2], b[3] != b[2], b[0] != b[3])
        n_crossed = sum(ck.astype(np.int8) for ck in crossed)
        pieces: list[np.ndarray] = []
        two = n_crossed == 2
        for ea, eb in _PAIRS:
            m = two & crossed[ea] & crossed[eb]
            if m.any():
                pieces.append(np.stack([pts[ea][m], pts[eb][m]], axis=1))
        four = n_crossed == 4
        if four.any():
            centre_above = (c[0] + c[1] + c[2] + c[3]) * 0.25 > level
            joined = four & (centre_above == b[0])  # corners 0 and 2 connect through the centre
            split = four & ~(centre_above == b[0])
            for mask, pairs in ((joined, ((0, 1), (2, 3))), (split, ((0, 3), (1, 2)))):
                if mask.any():
                    for ea, eb in pairs:
                        pieces.append(np.stack([pts[ea][mask], pts[eb][mask]], axis=1))
        if pieces:
            seg = np.concatenate(pieces, axis=0)
            out_segments.append(seg)
            out_levels.append(np.full(len(seg), li, dtype=np.intp))
    if not out_segments:
        return np.empty((0, 2, 2)), np.empty(0, dtype=np.intp)
    return np.concatenate(out_segments), np.concatenate(out_levels)


def decimate_indices(n: int, max_points: int) -> np.ndarray:
    """Indices that thin an n-point trail to at most about max_points, always keeping the last.

    The stride is a power of two and the kept indices are multiples of it, so as a trail grows
    the drawn points stay put between doublings instead of shimmering every frame.
    """
    if n <= max_points:
        return np.arange(n)
    stride = 1 << int(np.ceil(np.log2(n / max_points)))
    idx = np.arange(0, n, stride)
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return idx


def last_finite_prefix(points: np.ndarray) -> np.ndarray:
    """The leading rows of points that are all finite: a diverged run is drawn up to there."""
    points = np.asarray(points)
    if points.size == 0:
        return points
    ok = np.isfinite(points).all(axis=1)
    if ok.all():
        return points
    bad = int(np.argmin(ok))
    return points[:bad]


def scale_arrows(vectors: np.ndarray, max_length: float) -> np.ndarray:
    """Scale (n, 2) vectors for drawing: the longest gets max_length, lengths go as the square
    root of |v| / max |v|.

    Gradients, velocities and steps live in other units than positions; what a person reads
    from an arrow is its direction and how it compares with the other balls' arrows. The square
    root keeps that order while a ball on a gentle slope next to one on a cliff still shows
    which way it is pushed; a ball sitting at a minimum (|v| ~ 0) shows no arrow at all.
    """
    v = np.nan_to_num(np.asarray(vectors, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    v = v.reshape(-1, 2)
    norms = np.hypot(v[:, 0], v[:, 1])
    top = float(norms.max()) if norms.size else 0.0
    if top <= 0:
        return np.zeros_like(v)
    lengths = np.sqrt(norms / top) * max_length
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = np.where(norms[:, None] > 0, v / norms[:, None], 0.0)
    return unit * lengths[:, None]


def arrow_segments(
    origins: np.ndarray, vectors: np.ndarray, head_fraction: float = 0.3, head_angle: float = 25.0
) -> np.ndarray:
    """Shaft and two head strokes per arrow as segments (3 * k, 2, 2); zero arrows are skipped."""
    o = np.asarray(origins, dtype=np.float64)
    v = np.asarray(vectors, dtype=np.float64)
    keep = np.isfinite(o).all(axis=1) & np.isfinite(v).all(axis=1) & (np.abs(v).sum(axis=1) > 0)
    o, v = o[keep], v[keep]
    if len(o) == 0:
        return np.empty((0, 2, 2))
    tip = o + v
    back = -v * head_fraction
    a = np.radians(head_angle)
    ca, sa = np.cos(a), np.sin(a)
    left = np.stack([back[:, 0] * ca - back[:, 1] * sa, back[:, 0] * sa + back[:, 1] * ca], axis=1)
    right = np.stack(
        [back[:, 0] * ca + back[:, 1] * sa, -back[:, 0] * sa + back[:, 1] * ca], axis=1
    )
    shaft = np.stack([o, tip], axis=1)
    head_l = np.stack([tip, tip + left], axis=1)
    head_r = np.stack([tip, tip + right], axis=1)
    return np.concatenate([shaft, head_l, head_r], axis=0)


def bilinear(x: np.ndarray, y: np.ndarray, grid: np.ndarray, px: np.ndarray, py: np.ndarray):
    """grid[i, j] sampled at (x[i], y[j]) interpolated at points (px, py); clamped to the box."""
    px = np.clip(np.asarray(px, dtype=np.float64), x[0], x[-1])
    py = np.clip(np.asarray(py, dtype=np.float64), y[0], y[-1])
    i = np.clip(np.searchsorted(x, px) - 1, 0, len(x) - 2)
    j = np.clip(np.searchsorted(y, py) - 1, 0, len(y) - 2)
    tx = (px - x[i]) / (x[i + 1] - x[i])
    ty = (py - y[j]) / (y[j + 1] - y[j])
    g00, g10 = grid[i, j], grid[i + 1, j]
    g01, g11 = grid[i, j + 1], grid[i + 1, j + 1]
    return (g00 * (1 - tx) + g10 * tx) * (1 - ty) + (g01 * (1 - tx) + g11 * tx) * ty


class TrailThinner:
    """A growing trail thinned for display, updated from only the rows added since last time.

    Trails only grow while a simulation plays (tens of thousands of rows), but a view draws a few
    hundred pixels: re-thinning the whole trail every frame costs O(length) NumPy passes a
    frame. This keeps the thinned points and looks only at new rows. A row is dropped while it
    stays in the grid cell (size `cell` per column, in the coordinates `transform` gives) of the
    row before it, so the drawn line stays within one cell of the true path and a run creeping
    into a minimum collapses to a handful of points. The newest row always ends the result (the
    trail reaches its ball).

    Like `last_finite_prefix`, the trail ends before its first row that is not all finite.
    A trail that shrank, or whose first or last known row changed (a reset, another run),
    starts over.
    """

    __slots__ = (
        "_cell",
        "_check",
        "_kept",
        "_last_q",
        "_m",
        "_n",
        "_stopped",
        "_tail",
        "_transform",
    )

    def __init__(self, cell, transform=None) -> None:
        self._cell = np.asarray(cell, dtype=np.float64)
        self._transform = transform
        self.clear()

    def clear(self) -> None:
        self._n = 0  # source rows consumed
        self._m = 0  # rows kept
        self._kept: np.ndarray | None = None
        self._last_q: np.ndarray | None = None
        self._tail: np.ndarray | None = None  # the newest row, when it is not kept
        self._check: tuple[np.ndarray, np.ndarray] | None = None  # source rows 0 and n-1
        self._stopped = False

    @property
    def cell(self) -> np.ndarray:
        return self._cell

    def update(self, points: np.ndarray) -> np.ndarray:
        """The thinned (and transformed) trail (m, d) for the whole trail `points` (k, d)."""
        points = np.asarray(points, dtype=np.float64)
        k = len(points)
        if self._n and (
            k < self._n
            or not np.array_equal(points[0], self._check[0], equal_nan=True)
            or not np.array_equal(points[self._n - 1], self._check[1], equal_nan=True)
        ):
            self.clear()
        if k > self._n and not self._stopped:
            self._take(points, k)
        if self._m == 0:
            return np.empty((0, points.shape[1] if points.ndim == 2 else 0))
        kept = self._kept[: self._m]
        if self._tail is not None:
            return np.concatenate([kept, self._tail[None]])
        return kept

    def _take(self, points: np.ndarray, k: int) -> None:
        new = points[self._n : k]
        first = self._n == 0
        self._n = k
        self._check = (points[0].copy(), points[k - 1].copy())
        ok = np.isfinite(new).all(axis=1)
        if not ok.all():
            new = new[: int(np.argmin(ok))]
            self._stopped = True
        if len(new) == 0:
            return
        scene = new if self._transform is None else self._transform(new)
        scene = np.asarray(scene, dtype=np.float64)
        q = np.floor(np.clip(scene / self._cell, -1e12, 1e12))
        q[np.isnan(q)] = 0.0
        keep = np.empty(len(q), dtype=bool)
        keep[0] = first or bool((q[0] != self._last_q).any())
        keep[1:] = (q[1:] != q[:-1]).any(axis=1)
        self._last_q = q[-1]
        if keep[-1]:
            self._tail = None
        else:
            self._tail = scene[-1].copy()
        add = scene[keep]
        if self._kept is None:
            self._kept = np.empty((max(256, 2 * len(add)), scene.shape[1]))
        elif self._m + len(add) > len(self._kept):
            grown = np.empty((max(self._m + len(add), 2 * len(self._kept)), scene.shape[1]))
            grown[: self._m] = self._kept[: self._m]
            self._kept = grown
        self._kept[self._m : self._m + len(add)] = add
        self._m += len(add)


class MinMaxThinner:
    """A growing series y[0..n) thinned to its lowest and highest point in each of at most
    `bins` runs of a power-of-two length, updated from only the values added since last time.

    The result is a subset of the points (x is their index), in index order, so a curve drawn
    through it has the same extremes and the same envelope at every pixel as the whole series
    (what pyqtgraph's "peak" downsampling draws), at a cost per frame that does not grow with
    the series. While n <= bins the series is returned whole. The latest point always ends it.
    A series that shrank or whose first or last known value changed starts over.
    """

    __slots__ = ("_amax", "_amin", "_bins", "_check", "_done", "_nb", "_stride")

    def __init__(self, bins: int = 2048) -> None:
        self._bins = int(bins)
        self.clear()

    def clear(self) -> None:
        self._stride = 1
        self._nb = 0  # full runs kept
        self._done = 0  # values covered by full runs: nb * stride
        self._amin = np.empty(self._bins + 1, dtype=np.int64)  # index of each run's lowest
        self._amax = np.empty(self._bins + 1, dtype=np.int64)
        self._check: tuple[float, int, float] | None = None

    def update(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the thinned series for the whole series y (n,)."""
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        n = len(y)
        if self._check is not None:
            first, k, last = self._check
            same = n >= k and _same(y[0], first) and _same(y[k - 1], last)
            if not same:
                self.clear()
        if n:
            self._check = (float(y[0]), n, float(y[n - 1]))
        if n <= self._bins:
            self.clear()
            if n:
                self._check = (float(y[0]), n, float(y[n - 1]))
            return np.arange(n, dtype=np.float64), y
        if self._stride == 1:
            self._stride = 1 << int(np.ceil(np.log2(n / self._bins)))
        s = self._stride
        while True:
            full = (n - self._done) // s
            if full:
                runs = y[self._done : self._done + full * s].reshape(full, s)
                base = self._done + np.arange(full, dtype=np.int64) * s
                take = min(full, self._bins + 1 - self._nb)
                self._amin[self._nb : self._nb + take] = base[:take] + runs[:take].argmin(1)
                self._amax[self._nb : self._nb + take] = base[:take] + runs[:take].argmax(1)
                self._nb += take
                self._done += take * s
            if self._nb <= self._bins:
                break
            # Too many runs: merge neighbours (the odd one out is re-read next time round).
            m = self._nb // 2
            a, b = self._amin[0 : 2 * m : 2], self._amin[1 : 2 * m : 2]
            self._amin[:m] = np.where(y[b] < y[a], b, a)
            a, b = self._amax[0 : 2 * m : 2], self._amax[1 : 2 * m : 2]
            self._amax[:m] = np.where(y[b] > y[a], b, a)
            self._nb, s = m, 2 * s
            self._stride = s
            self._done = m * s
        lo, hi = self._amin[: self._nb], self._amax[: self._nb]
        idx = np.empty(2 * self._nb, dtype=np.int64)
        idx[0::2] = np.minimum(lo, hi)
        idx[1::2] = np.maximum(lo, hi)
        rest = y[self._done :]
        if len(rest):
            t = self._done + np.array([rest.argmin(), rest.argmax()], dtype=np.int64)
            idx = np.concatenate([idx, np.sort(t)])
        if idx[-1] != n - 1:
            idx = np.append(idx, n - 1)
        return idx.astype(np.float64), y[idx]


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)
