"""Theory numbers: against hand-computed examples, and against what a real simulation measures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gdsim.engine import surfaces, theory
from gdsim.engine.simulation import RunSpec, Simulation, Status


def test_quadratic_theory_of_the_ravine_by_hand():
    # ½(x² + 49 y²): curvatures 1 and 49, κ = 49, √κ = 7.
    t = theory.quadratic_theory(np.diag([1.0, 49.0]))
    assert (t.mu, t.L, t.kappa) == pytest.approx((1.0, 49.0, 49.0))
    assert t.gd_lr == pytest.approx(2 / 50)
    assert t.gd_rate == pytest.approx(48 / 50)
    assert t.hb_lr == pytest.approx((2 / (7 + 1)) ** 2)  # 1/16
    assert t.hb_momentum == pytest.approx((6 / 8) ** 2)  # 9/16
    assert t.hb_rate == pytest.approx(6 / 8)


def test_a_rotated_hessian_has_the_same_theory():
    c, s = math.cos(0.7), math.sin(0.7)
    r = np.array([[c, -s], [s, c]])
    h = r @ np.diag([2.0, 8.0]) @ r.T
    t = theory.quadratic_theory(h)
    assert (t.mu, t.L, t.kappa) == pytest.approx((2.0, 8.0, 4.0))
    assert t.hb_rate == pytest.approx(1 / 3)


def test_no_theory_without_a_minimum():
    with pytest.raises(ValueError, match="not positive definite"):
        theory.quadratic_theory(np.diag([2.0, -2.0]))
    with pytest.raises(ValueError, match="not finite"):
        theory.quadratic_theory(np.array([[np.nan, 0.0], [0.0, 1.0]]))


def test_rates_at_the_optimal_settings_equal_the_optimal_rates():
    t = theory.quadratic_theory(np.diag([1.0, 49.0]))
    lam = [t.mu, t.L]
    assert theory.gd_rate(lam, t.gd_lr) == pytest.approx(t.gd_rate)
    assert theory.heavy_ball_rate(lam, t.gd_lr, 0.0) == pytest.approx(t.gd_rate)
    # At the optimum the roots are double (a Jordan block): np.roots is accurate to ~√eps.
    assert theory.heavy_ball_rate(lam, t.hb_lr, t.hb_momentum) == pytest.approx(t.hb_rate, 1e-6)


def test_predicted_rate_by_hand_and_divergence_above_the_ceiling():
    # GD on curvatures 1, 4 with lr 0.3: |1 - 0.3| = 0.7, |1 - 1.2| = 0.2 -> 0.7.
    assert theory.gd_rate([1.0, 4.0], 0.3) == pytest.approx(0.7)
    # lr above 2/4: |1 - 0.6*4| = 1.4 > 1, diverges.
    assert theory.gd_rate([1.0, 4.0], 0.6) == pytest.approx(1.4)
    # Heavy ball, one direction, λ = 1, lr 0.5, β 0.25: z² - 0.75 z + 0.25 has complex roots
    # of modulus √β = 0.5.
    assert theory.heavy_ball_rate([1.0], 0.5, 0.25) == pytest.approx(0.5)
    # Real roots: λ = 1, lr 0.1, β 0.1: z² - 1.0 z + 0.1 -> (1 + √0.6) / 2.
    assert theory.heavy_ball_rate([1.0], 0.1, 0.1) == pytest.approx((1 + math.sqrt(0.6)) / 2)


def test_lr_ceiling_by_hand_and_where_it_does_not_apply():
    assert theory.lr_ceiling(np.diag([1.0, 4.0])) == pytest.approx(0.5)
    assert theory.lr_ceiling(np.diag([-1.0, 0.0])) == math.inf
    assert theory.lr_ceiling(np.diag([-1.0, -3.0])) == math.inf
    assert math.isnan(theory.lr_ceiling(np.full((2, 2), np.inf)))


def test_is_quadratic_tells_quadratics_from_the_rest():
    for name in ("bowl", "ravine", "booth", "matyas", "saddle"):
        s = surfaces.get(name)
        assert theory.is_quadratic(s.hessian, s.box) is not None, name
    for name in ("rosenbrock", "himmelblau", "two-wells", "ackley", "monkey-saddle"):
        s = surfaces.get(name)
        assert theory.is_quadratic(s.hessian, s.box) is None, name
    h = theory.is_quadratic(surfaces.get("ravine", kappa=20.0).hessian, ((-3, 3), (-3, 3)))
    assert h == pytest.approx(np.diag([1.0, 20.0]))
    rotated = surfaces.get("ravine", kappa=20.0, angle=30.0)
    h = theory.is_quadratic(rotated.hessian, rotated.box)
    assert h is not None and theory.curvatures(h) == pytest.approx([1.0, 20.0])
    one_d = surfaces.get("1d-parabola")
    assert theory.is_quadratic(one_d.hessian, one_d.box) == pytest.approx(np.diag([2.0, 0.0]))
    assert theory.is_quadratic(surfaces.get("1d-double-well").hessian, one_d.box) is None


def test_measured_rate_of_an_exact_geometric_sequence():
    losses = 3.0 + 5.0 * 0.8 ** (2 * np.arange(200))
    assert theory.measured_rate(losses, 3.0) == pytest.approx(0.8, rel=1e-6)
    assert theory.measured_rate(losses[:5], 3.0) is None  # too short to fit
    # Once the gap is rounding noise the rest is ignored, not fitted.
    flat = np.concatenate([1.0 + 0.5 ** (2 * np.arange(30)), np.ones(500)])
    assert theory.measured_rate(flat, 1.0) == pytest.approx(0.5, rel=1e-6)


def test_predicted_gaps():
    assert theory.predicted_gaps(2.0, 0.5, 3) == pytest.approx([2.0, 0.5, 0.125])


def _run(surface, optimizer_params, steps):
    spec = RunSpec("run", "sgd", optimizer_params, tuple(surface.starts[0]))
    sim = Simulation(surface, [spec])
    sim.step(steps)
    return sim


@pytest.mark.parametrize("kappa", [10.0, 50.0, 400.0])
def test_heavy_ball_at_the_optimum_converges_at_the_predicted_rate(kappa):
    s = surfaces.get("ravine", kappa=kappa)
    t = theory.quadratic_theory(theory.is_quadratic(s.hessian, s.box))
    sim = _run(s, {"lr": t.hb_lr, "momentum": t.hb_momentum}, 400)
    measured = theory.measured_rate(sim.history(0).losses, 0.0)
    assert measured == pytest.approx(t.hb_rate, rel=0.03)
    # ... and far faster than plain GD at its own optimum, as theory says.
    gd = _run(s, {"lr": t.gd_lr}, 400)
    assert theory.measured_rate(gd.history(0).losses, 0.0) == pytest.approx(t.gd_rate, rel=0.03)


def test_a_non_optimal_setting_converges_at_its_predicted_rate():
    s = surfaces.get("ravine", kappa=50.0, angle=30.0)
    lam = theory.curvatures(s.hessian(np.zeros(2)))
    predicted = theory.heavy_ball_rate(lam, 0.02, 0.5)
    sim = _run(s, {"lr": 0.02, "momentum": 0.5}, 600)
    assert theory.measured_rate(sim.history(0).losses, 0.0) == pytest.approx(predicted, rel=0.03)


def test_gd_above_the_ceiling_diverges_and_below_converges():
    s = surfaces.get("ravine", kappa=50.0)
    ceiling = theory.lr_ceiling(s.hessian(np.array([1.0, 1.0])))
    assert ceiling == pytest.approx(2 / 50)
    above = _run(s, {"lr": 1.05 * ceiling}, 3000)
    assert above.status(0) is Status.DIVERGED
    below = _run(s, {"lr": 0.95 * ceiling}, 3000)
    assert below.status(0) is Status.RUNNING
    assert below.history(0).losses[-1] < 1e-6 * below.history(0).losses[0]


def test_quadratic_minimum_is_one_newton_step_away():
    s = surfaces.get("booth")
    h = theory.is_quadratic(s.hessian, s.box)
    p, value = theory.quadratic_minimum(s.value, s.gradient, h, np.array([-8.0, 5.0]))
    assert p == pytest.approx([1.0, 3.0]) and value == pytest.approx(0.0, abs=1e-20)
    # A function of x only: a 1 x 1 Hessian moves x alone.
    one = surfaces.from_formula("(x - 1.5)^2 + 2")
    p, value = theory.quadratic_minimum(one.value, one.gradient, [[2.0]], np.array([0.0, 0.7]))
    assert p == pytest.approx([1.5, 0.7]) and value == pytest.approx(2.0)
    assert theory.lr_ceiling([[2.0]]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no minimum"):
        theory.quadratic_minimum(s.value, s.gradient, np.diag([1.0, -1.0]), np.zeros(2))
