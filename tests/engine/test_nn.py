"""The neural-network surfaces: exact losses of two-parameter models on generated data."""

from __future__ import annotations

import numpy as np
import pytest

from gdsim.engine import nn, surfaces
from gdsim.engine.expression import compile_formula
from gdsim.engine.simulation import RunSpec, Simulation

NN_NAMES = ["nn-logistic", "nn-linear", "nn-tanh"]
VARIANTS = [
    *(surfaces.get(n) for n in NN_NAMES),
    surfaces.get("nn-logistic", seed=7),
    surfaces.get("nn-linear", seed=3, offset=-4.0, spread=0.3),
    surfaces.get("nn-linear", offset=0.0, spread=2.5),
    surfaces.get("nn-tanh", seed=11),
]
IDS = [f"{s.name}{s.params}" for s in VARIANTS]


def points(s: surfaces.Surface, n: int = 200, seed: int = 0) -> np.ndarray:
    """Random points over a box twice as large as the surface's (the far flat parts too)."""
    (x0, x1), (y0, y1) = s.box
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(cx - hx, cx + hx, n), rng.uniform(cy - hy, cy + hy, n)])


def central(f, pts: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Five-point central differences of f (n, 2) -> (n, ...) along x and y (last-but-one axis
    for vector f, so the gradient of a gradient is laid out like a Hessian)."""
    cols = []
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        cols.append((-f(pts + 2 * e) + 8 * f(pts + e) - 8 * f(pts - e) + f(pts - 2 * e)) / (12 * h))
    return np.stack(cols, axis=1 if cols[0].ndim == 1 else -2)


# ----------------------------------------------------------------------------------- calculus
@pytest.mark.parametrize("s", VARIANTS, ids=IDS)
def test_gradient_equals_central_differences(s: surfaces.Surface) -> None:
    pts = points(s)
    g = s.gradient(pts)
    scale = 1 + np.abs(g)
    np.testing.assert_allclose(central(s.value, pts) / scale, g / scale, atol=1e-8)


@pytest.mark.parametrize("s", VARIANTS, ids=IDS)
def test_hessian_equals_central_differences_of_the_gradient(s: surfaces.Surface) -> None:
    pts = points(s, seed=1)
    h = s.hessian(pts)
    scale = 1 + np.abs(h)
    np.testing.assert_allclose(central(s.gradient, pts) / scale, h / scale, atol=1e-8)
    np.testing.assert_array_equal(h[:, 0, 1], h[:, 1, 0])


@pytest.mark.parametrize("s", VARIANTS, ids=IDS)
def test_minibatch_gradient_and_hessian_equal_central_differences(s: surfaces.Surface) -> None:
    assert s.data is not None
    idx = np.random.default_rng(5).choice(s.data.m, 9, replace=False)
    pts = points(s, 80, seed=2)
    g = s.batch_gradient(pts, idx)
    scale = 1 + np.abs(g)
    fd = central(lambda p: s.batch_value(p, idx), pts)
    np.testing.assert_allclose(fd / scale, g / scale, atol=1e-8)
    h = s.data.hessian(pts, idx)
    fdh = central(lambda p: s.batch_gradient(p, idx), pts)
    np.testing.assert_allclose(fdh / (1 + np.abs(h)), h / (1 + np.abs(h)), atol=1e-8)


@pytest.mark.parametrize("name", NN_NAMES)
def test_loss_equals_the_same_sum_typed_as_a_formula(name: str) -> None:
    """An independent check: the closed forms against the formula engine's symbolic
    derivatives of the per-point sum written out in the formula grammar."""
    s = surfaces.get(name)
    d = s.data
    assert d is not None
    terms = []
    for u, v in zip(d.x[:12], d.y[:12], strict=True):
        u, v = repr(float(u)), repr(float(v))
        if d.kind == "logistic":
            terms.append(f"log(1 + exp(x*{u} + y)) - {v}*(x*{u} + y)")
        elif d.kind == "linear":
            terms.append(f"(x*{u} + y - {v})^2")
        else:
            terms.append(f"(y*tanh(x*{u}) - {v})^2")
    compiled = [compile_formula(t) for t in terms]  # one per point: formulas are short
    idx = np.arange(12)
    pts = points(s, 50, seed=3) * 0.5  # moderate z: the typed log(1 + exp) form overflows far out
    for what in ("value", "gradient", "hessian"):
        typed = sum(getattr(c, what)(pts) for c in compiled) / 12
        ours = getattr(d, what)(pts, idx)
        np.testing.assert_allclose(ours, typed, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("s", VARIANTS, ids=IDS)
def test_batch_of_every_index_is_the_full_loss(s: surfaces.Surface) -> None:
    assert s.data is not None
    pts = points(s, 60)
    every = np.random.default_rng(0).permutation(s.data.m)
    np.testing.assert_allclose(s.batch_value(pts, every), s.value(pts), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(
        s.batch_gradient(pts, every), s.gradient(pts), rtol=1e-12, atol=1e-14
    )


def test_batch_gradient_is_the_mean_of_single_point_gradients() -> None:
    s = surfaces.get("nn-tanh")
    pts = points(s, 10)
    idx = np.array([3, 17, 40, 41])
    singles = np.mean([s.batch_gradient(pts, np.array([i])) for i in idx], axis=0)
    np.testing.assert_allclose(s.batch_gradient(pts, idx), singles, rtol=1e-12, atol=1e-15)


def test_one_row_of_indices_per_point() -> None:
    s = surfaces.get("nn-linear")
    pts = points(s, 3)
    idx = np.array([[0, 1, 2], [5, 6, 7], [10, 11, 12]])
    got = s.batch_gradient(pts, idx)
    for k in range(3):
        np.testing.assert_array_equal(got[k], s.batch_gradient(pts[k], idx[k]))
    with pytest.raises(ValueError, match="idx must be"):
        s.batch_gradient(pts, np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="out of range"):
        s.batch_value(pts, np.array([64]))
    with pytest.raises(ValueError, match="integer"):
        s.batch_value(pts, np.array([0.5]))


def test_a_surface_without_data_has_no_minibatches() -> None:
    bowl = surfaces.get("bowl")
    assert bowl.data is None
    with pytest.raises(ValueError, match="no data set"):
        bowl.batch_value(np.zeros((1, 2)), np.array([0]))


def test_large_grids_are_evaluated_in_blocks_with_the_same_result() -> None:
    s = surfaces.get("nn-logistic")
    _, _, z = s.grid(130, 70)  # 9100 points: more than one block
    xx, yy = np.meshgrid(*s.grid(130, 70)[:2], indexing="ij")
    pick = np.column_stack([xx.ravel(), yy.ravel()])[::97]
    one = np.array([s.value(p) for p in pick])
    np.testing.assert_array_equal(z.ravel()[::97], one)


def test_logistic_loss_is_stable_where_the_neuron_saturates() -> None:
    s = surfaces.get("nn-logistic")
    far = np.array([[1e4, 1e4], [-1e4, 3e3]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v, g, h = s.value(far), s.gradient(far), s.hessian(far)
    assert np.isfinite(v).all() and np.isfinite(g).all() and np.isfinite(h).all()
    # Far out the loss is linear in the weights: |z| per misclassified point, no log(0) = inf.
    d = s.data
    assert d is not None
    z = 1e4 * d.x + 1e4
    np.testing.assert_allclose(v[0], np.mean(np.maximum(z, 0) - d.y * z), rtol=1e-12)


# ------------------------------------------------------------------------------------ minima
@pytest.mark.parametrize("s", VARIANTS, ids=IDS)
def test_minima_are_true_minima(s: surfaces.Surface) -> None:
    assert len(s.minima)
    for p, v in zip(s.minima, s.minima_values, strict=True):
        assert np.linalg.norm(s.gradient(p)) < 1e-12
        assert np.all(np.linalg.eigvalsh(s.hessian(p)) > 0)
        assert s.value(p) == pytest.approx(v, rel=1e-15, abs=1e-15)
        rng = np.random.default_rng(0)
        around = p + rng.normal(0, 1e-3, (200, 2))
        assert (s.value(around) >= v).all()
    (x0, x1), (y0, y1) = s.box
    assert ((s.minima >= [x0, y0]) & (s.minima <= [x1, y1])).all()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 42, 9999])
def test_linear_minimum_is_the_least_squares_solution(seed: int) -> None:
    s = surfaces.get("nn-linear", seed=seed, offset=3.0, spread=0.5)
    d = s.data
    assert d is not None
    w, b = np.linalg.lstsq(np.column_stack([d.x, np.ones(d.m)]), d.y, rcond=None)[0]
    np.testing.assert_allclose(s.minima[0], [w, b], rtol=1e-12, atol=1e-12)


def test_tanh_minima_are_a_mirrored_pair_with_a_saddle_between() -> None:
    s = surfaces.get("nn-tanh")
    a, b = s.minima
    np.testing.assert_array_equal(a, -b)
    assert s.minima_values[0] == s.minima_values[1]
    pts = points(s, 50)
    np.testing.assert_allclose(s.value(pts), s.value(-pts), rtol=1e-14)
    origin = np.zeros(2)
    np.testing.assert_allclose(s.gradient(origin), 0.0, atol=1e-15)
    eig = np.linalg.eigvalsh(s.hessian(origin))
    assert eig[0] < 0 < eig[1]  # a saddle


def test_linear_condition_number_comes_from_the_data() -> None:
    for offset, spread in ((0.0, 1.0), (2.0, 1.0), (4.0, 0.5)):
        s = surfaces.get("nn-linear", offset=offset, spread=spread)
        ev = np.linalg.eigvalsh(s.hessian(np.zeros(2)))
        expected = np.linalg.eigvalsh(2 * np.array([[offset**2 + spread**2, offset], [offset, 1]]))
        np.testing.assert_allclose(ev, expected, rtol=1e-12)
        assert f"κ = {ev[1] / ev[0]:.3g}" in s.story
    assert surfaces.get("nn-linear", offset=0.0, spread=1.0).story.count("κ = 1 ") == 1


# -------------------------------------------------------------------------------------- data
def test_data_is_reproducible_by_seed_and_differs_between_seeds() -> None:
    for kind in nn.KINDS:
        a, b, c = nn.make_dataset(kind, 5), nn.make_dataset(kind, 5), nn.make_dataset(kind, 6)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        assert not np.array_equal(a.x, c.x)
        assert a.m == nn.N_POINTS and not a.x.flags.writeable


def test_logistic_data_has_two_overlapping_classes() -> None:
    d = nn.make_dataset("logistic", 0)
    assert set(d.y.tolist()) == {0.0, 1.0} and d.y.sum() == d.m / 2
    assert d.x[d.y == 0].max() > d.x[d.y == 1].min()  # not separable: a finite minimum


def test_bad_seeds_and_params_are_refused_with_the_name() -> None:
    with pytest.raises(ValueError, match="seed must be a whole number"):
        surfaces.get("nn-tanh", seed=1.5)
    with pytest.raises(ValueError, match=r"Invalid seed.*\[0, 9999\]"):
        surfaces.get("nn-tanh", seed=-1)
    with pytest.raises(ValueError, match=r"Invalid spread"):
        surfaces.get("nn-linear", spread=0.0)
    with pytest.raises(ValueError, match="unknown parameter"):
        surfaces.get("nn-logistic", offset=1.0)
    with pytest.raises(ValueError, match="unknown model kind"):
        nn.make_dataset("relu", 0)


def test_predict_is_the_model_output() -> None:
    xs = np.linspace(-2, 2, 5)
    assert np.allclose(nn.make_dataset("linear", 0).predict(2.0, -1.0, xs), 2 * xs - 1)
    assert np.allclose(nn.make_dataset("tanh", 0).predict(1.5, 2.0, xs), 2 * np.tanh(1.5 * xs))
    p = nn.make_dataset("logistic", 0).predict(3.0, 0.5, xs)
    assert np.allclose(p, 1 / (1 + np.exp(-(3 * xs + 0.5))))
    curves = nn.make_dataset("linear", 0).predict(np.array([[1.0], [2.0]]), 0.0, xs)
    assert curves.shape == (2, 5)


def test_surface_params_round_trip_through_get() -> None:
    s = surfaces.get("nn-linear", seed=4, offset=-1.0, spread=2.0)
    assert s.params == {"seed": 4.0, "offset": -1.0, "spread": 2.0}
    again = surfaces.get("nn-linear", **s.params)
    np.testing.assert_array_equal(again.data.x, s.data.x)  # type: ignore[union-attr]
    assert [p.name for p in surfaces.param_specs("nn-tanh")] == ["seed"]


# ---------------------------------------------------------------------------- training on it
def test_full_batch_sgd_on_linear_regression_converges_to_least_squares() -> None:
    s = surfaces.get("nn-linear")
    d = s.data
    assert d is not None
    lstsq = np.linalg.lstsq(np.column_stack([d.x, np.ones(d.m)]), d.y, rcond=None)[0]
    sim = Simulation(s, [RunSpec("gd", "sgd", {"lr": 0.1}, (-1.0, 1.5), batch_size=None)])
    sim.step(3000)
    np.testing.assert_allclose(sim.frame().positions[0], lstsq, rtol=1e-9, atol=1e-9)


def test_minibatch_sgd_hovers_near_the_minimum_but_not_on_it() -> None:
    s = surfaces.get("nn-linear")
    sim = Simulation(s, [RunSpec("sgd", "sgd", {"lr": 0.05}, (-1.0, 1.5), batch_size=4)])
    sim.step(3000)
    p = sim.frame().positions[0]
    dist = np.linalg.norm(p - s.minima[0])
    assert 1e-6 < dist < 0.5
