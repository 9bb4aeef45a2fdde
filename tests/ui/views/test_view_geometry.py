"""Geometry the views share, checked without any widget."""

from __future__ import annotations

import numpy as np
import pytest

from gdsim.ui.views import colormaps
from gdsim.ui.views.geometry import (
    HeightScale,
    arrow_segments,
    bilinear,
    clean_grid,
    contour_segments,
    decimate_indices,
    last_finite_prefix,
    scale_arrows,
)


def grid(n=101):
    x = np.linspace(-2, 2, n)
    y = np.linspace(-1.5, 2.5, n + 10)
    gx, gy = np.meshgrid(x, y, indexing="ij")
    return x, y, gx, gy


def test_contours_of_a_bowl_are_circles_at_their_levels():
    x, y, gx, gy = grid()
    seg, lev = contour_segments(x, y, gx**2 + gy**2, np.array([0.25, 1.0]))
    r = np.hypot(seg[..., 0], seg[..., 1])
    assert set(lev.tolist()) == {0, 1}
    assert np.allclose(r[lev == 0], 0.5, atol=2e-3)
    assert np.allclose(r[lev == 1], 1.0, atol=2e-3)
    # Each circle is closed: every endpoint is shared by exactly two segments.
    ends = np.round(seg[lev == 1].reshape(-1, 2), 9)
    _, counts = np.unique(ends, axis=0, return_counts=True)
    assert (counts == 2).all()


def test_contours_follow_x_and_y_the_right_way_round():
    # z = x: the level line z = 1 is the vertical line x = 1, whatever y does.
    x, y, gx, _ = grid()
    seg, _ = contour_segments(x, y, gx, np.array([1.0]))
    assert np.allclose(seg[..., 0], 1.0)
    assert seg[..., 1].min() == pytest.approx(y[0]) and seg[..., 1].max() == pytest.approx(y[-1])


def test_saddle_cells_give_two_segments_each():
    x = y = np.array([0.0, 1.0])
    h = np.array([[1.0, 0.0], [0.0, 1.0]])  # opposite corners above 0.5
    seg, _ = contour_segments(x, y, h, np.array([0.5]))
    assert len(seg) == 2


def test_log_heights_are_finite_and_levels_log_spaced():
    _, _, gx, gy = grid()
    z = 1e-6 + (gx**2 + gy**2) ** 3
    s = HeightScale.fit(z, log=True)
    h = s.height(z)
    assert np.isfinite(h).all() and h.min() == pytest.approx(s.hmin)
    levels_z = 10 ** s.levels(5) - s.eps + s.zmin
    ratios = np.diff(np.log10(levels_z - s.zmin + s.eps))
    assert np.allclose(ratios, ratios[0])
    # A ball below the grid's minimum sits on the floor instead of at -inf.
    assert np.isfinite(s.height(s.zmin - 1.0))
    assert s.unit(z).min() == 0.0 and s.unit(z).max() == 1.0


def test_flat_and_broken_grids():
    s = HeightScale.fit(np.full((3, 3), 2.0), log=False)
    assert s.hmax > s.hmin
    z = clean_grid(np.array([[np.nan, 1.0], [np.inf, -np.inf]]))
    assert np.isfinite(z).all() and z[0, 0] == 1.0 and z[1, 1] == 1.0


def test_decimation_keeps_the_last_point_and_is_stable_as_the_trail_grows():
    assert (decimate_indices(10, 100) == np.arange(10)).all()
    a, b = decimate_indices(12_001, 5000), decimate_indices(12_005, 5000)
    assert a[-1] == 12_000 and b[-1] == 12_004 and len(a) <= 5001
    assert np.array_equal(a[:-1], b[: len(a) - 1])


def test_last_finite_prefix():
    p = np.array([[0.0, 0.0], [1.0, 1.0], [np.inf, 0.0], [2.0, 2.0]])
    assert len(last_finite_prefix(p)) == 2


def test_arrows():
    v = scale_arrows(np.array([[3.0, 4.0], [0.0, 0.0], [0.03, 0.04]]), 2.0)
    assert np.hypot(*v[0]) == pytest.approx(2.0)
    assert (v[1] == 0).all()
    assert np.hypot(*v[2]) == pytest.approx(0.2)  # sqrt(0.01) * 2
    seg = arrow_segments(np.zeros((3, 2)), v)
    assert seg.shape == (6, 2, 2)  # the zero arrow is skipped
    assert np.allclose(seg[0, 1], v[0])  # the shaft ends at the tip


def test_bilinear_is_exact_on_planes():
    x, y, gx, gy = grid(21)
    g = 2 * gx - 3 * gy + 1
    px, py = np.array([0.13, -1.7]), np.array([0.4, 2.2])
    assert np.allclose(bilinear(x, y, g, px, py), 2 * px - 3 * py + 1)


def test_colormaps():
    assert colormaps.names()[0] == "viridis"
    for name in colormaps.names():
        assert colormaps.lookup_table(name).shape == (256, 4)
    c = colormaps.map_unit("viridis", np.array([[0.0, 1.0]]))
    assert c.shape == (1, 2, 4) and c.dtype == np.float32
    with pytest.raises(ValueError, match="viridis"):
        colormaps.get("jet")


def test_trail_thinner_keeps_the_shape_from_only_the_new_rows():
    from gdsim.ui.views.geometry import TrailThinner

    rng = np.random.default_rng(1)
    # a path that wanders, then creeps into a minimum in ever smaller steps
    walk = np.cumsum(rng.normal(0, 0.01, (3000, 2)), axis=0)
    creep = walk[-1] + np.cumsum(rng.normal(0, 1e-5, (20000, 2)), axis=0)
    path = np.concatenate([walk, creep])
    cell = np.array([0.004, 0.004])
    whole = TrailThinner(cell).update(path)
    grown = TrailThinner(cell)
    for end in range(1, len(path) + 1, 997):
        part = grown.update(path[:end])
        assert np.array_equal(part[-1], path[end - 1])  # the newest row ends the line
    part = grown.update(path)
    assert np.array_equal(part, whole)
    assert len(whole) < 0.2 * len(path)  # the creep into the minimum collapses
    assert np.array_equal(whole[0], path[0])
    # every dropped row shares its grid cell with a kept one: the line stays within a cell
    kept_cells = {tuple(c) for c in np.floor(whole / cell).astype(int)}
    assert all(tuple(c) in kept_cells for c in np.floor(path / cell).astype(int))


def test_trail_thinner_stops_at_non_finite_rows_and_restarts_after_a_reset():
    from gdsim.ui.views.geometry import TrailThinner

    t = TrailThinner(np.array([1e-3, 1e-3]))
    path = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [np.inf, 0.0], [0.3, 0.0]])
    assert np.array_equal(t.update(path[:2]), path[:2])
    assert np.array_equal(t.update(path), path[:3])
    other = np.array([[1.0, 1.0], [1.0, 1.5]])
    assert np.array_equal(t.update(other), other)  # shorter: a reset, start over
    moved = np.array([[5.0, 5.0], [1.0, 1.5], [2.0, 2.0]])
    assert np.array_equal(t.update(moved), moved)  # first row changed: another trail
    assert t.update(np.empty((0, 2))).shape == (0, 2)


def test_min_max_thinner_keeps_every_extreme_from_only_the_new_values():
    from gdsim.ui.views.geometry import MinMaxThinner

    rng = np.random.default_rng(2)
    y = np.exp(-np.arange(50_000) / 9000) + rng.normal(0, 0.01, 50_000)
    t = MinMaxThinner(bins=512)
    for n in [*range(1, 50_000, 1234), 50_000]:
        x, v = t.update(y[:n])
        assert x[-1] == n - 1 and np.all(np.diff(x) >= 0)
        assert np.array_equal(v, y[x.astype(int)])  # a subset of the points
        assert v.min() == y[:n].min() and v.max() == y[:n].max()
        assert len(x) <= 2 * 512 + 3
        # runs are at most 2 n / bins long, so no two kept points are 4 n / bins apart
        w = 4 * n // 512 + 2
        for a in range(0, n - w, max(w, n // 7)):
            inside = (x >= a) & (x < a + w)
            if n > 512:
                assert v[inside].size  # no hole wider than a run
    small = MinMaxThinner(bins=512).update(y[:300])
    assert np.array_equal(small[1], y[:300])  # short series are drawn whole
    _, v2 = t.update(y[:100] + 1.0)  # another series: starts over
    assert np.array_equal(v2, y[:100] + 1.0)
