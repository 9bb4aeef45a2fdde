"""Sweeps: each cell is the run it stands for, the maps show what theory says they show."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gdsim.engine import surfaces
from gdsim.engine import sweep as sweep_module
from gdsim.engine.simulation import RunSpec, Simulation, Status
from gdsim.engine.sweep import MAX_CELLS, Axis, axis_names, parse_axis, sweep

ROSENBROCK_START = (-1.5, 2.0)


def single_run(surface, spec: RunSpec, steps: int, seed: int = 0, index: int = 0):
    """The cell's twin: one ball in a Simulation, as run ``index`` of a scenario."""
    filler = [RunSpec(f"other {k}", "sgd", {"lr": 0.01}, (0.5, 0.5)) for k in range(index)]
    sim = Simulation(surface, [*filler, spec], seed=seed)
    sim.step(steps)
    return sim, index


# ------------------------------------------------------------------ axes
def test_parse_axis_linear_and_log_with_exact_ends():
    a = parse_axis("momentum=0:0.99:100")
    assert (a.name, a.log, a.values.size) == ("momentum", False, 100)
    assert a.values[0] == 0.0 and a.values[-1] == 0.99
    np.testing.assert_allclose(np.diff(a.values), 0.01)
    b = parse_axis("lr=1e-4:1:log:100")
    assert (b.name, b.log, b.values.size) == ("lr", True, 100)
    assert b.values[0] == 1e-4 and b.values[-1] == 1.0
    ratios = b.values[1:] / b.values[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    assert not b.values.flags.writeable


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("lr", "NAME=LOW:HIGH:COUNT"),
        ("lr=1:2", "expected"),
        ("lr=a:2:10", "must be numbers"),
        ("lr=1:2:ten", "COUNT must be an integer"),
        ("lr=2:1:10", "LOW must be below HIGH"),
        ("lr=1:1:10", "LOW must be below HIGH"),
        ("lr=0:1:log:10", "log axis needs LOW > 0"),
        ("lr=-1:1:log:10", "log axis needs LOW > 0"),
        ("lr=1e-3:1:lin:10", "may only be 'log'"),
        ("lr=1e-3:1:1", "COUNT must be in [2"),
        ("lr=1e-3:inf:10", "finite"),
        ("lr=1e-3:1:1000000", "COUNT must be in"),
    ],
)
def test_parse_axis_refuses_with_the_reason(text, needle):
    with pytest.raises(ValueError, match=None) as e:
        parse_axis(text)
    assert needle in str(e.value)


def test_axis_names_split_betas():
    assert axis_names("sgd") == ["lr", "momentum", "dampening", "weight_decay"]
    assert "beta1" in axis_names("adam") and "beta2" in axis_names("adam")
    assert "amsgrad" not in axis_names("adam")


# ------------------------------------------------------------------ a cell is a run
def test_each_cell_is_the_simulation_run_bit_for_bit():
    surface = surfaces.get("rosenbrock")
    x, y = parse_axis("lr=1e-4:1e-2:log:12"), parse_axis("momentum=0:0.99:9")
    r = sweep(surface, "sgd", {"nesterov": False}, ROSENBROCK_START, x, y, steps=400)
    assert r.shape == (9, 12)
    assert r.diverged.any() and not r.diverged.all()  # both kinds of cell are compared
    for i in range(9):
        for j in range(12):
            params = {"lr": float(x.values[j]), "momentum": float(y.values[i])}
            sim, k = single_run(surface, RunSpec("cell", "sgd", params, ROSENBROCK_START), 400)
            f = sim.frame()
            assert r.diverged[i, j] == (f.status[k] is Status.DIVERGED)
            assert r.diverged_at[i, j] == f.stopped_at[k]
            assert r.final_loss[i, j] == f.losses[k]
            assert r.final_position[i, j].tobytes() == f.positions[k].tobytes()
            losses = sim.history(k).losses
            below = np.flatnonzero(losses < 1e-6)
            expected = float(below[0]) if below.size else math.inf
            assert r.steps_to_tol[i, j] == expected


def test_adam_cell_with_schedule_and_noise_is_run_n_of_a_scenario():
    surface = surfaces.get("rosenbrock")
    x, y = parse_axis("lr=1e-3:0.5:log:7"), parse_axis("beta1=0:0.99:5")
    schedule = {"name": "step", "step_size": 50, "gamma": 0.5}
    r = sweep(
        surface, "adam", {"betas": (0.9, 0.99), "amsgrad": True}, ROSENBROCK_START, x, y,
        steps=300, schedule=schedule, noise=0.3, seed=7, stream=2,
    )  # fmt: skip
    for i in range(5):
        for j in range(7):
            params = {"lr": float(x.values[j]), "betas": (float(y.values[i]), 0.99)}
            params["amsgrad"] = True
            spec = RunSpec("cell", "adam", params, ROSENBROCK_START, schedule=schedule, noise=0.3)
            sim, k = single_run(surface, spec, 300, seed=7, index=2)
            f = sim.frame()
            assert r.final_loss[i, j] == f.losses[k]
            assert r.final_position[i, j].tobytes() == f.positions[k].tobytes()
            assert r.diverged_at[i, j] == f.stopped_at[k]


def test_blocks_and_time_chunks_do_not_change_a_bit(monkeypatch):
    surface = surfaces.get("rosenbrock")
    x, y = parse_axis("lr=1e-4:0.05:log:9"), parse_axis("momentum=0:0.95:6")
    kw = {"steps": 120, "schedule": {"name": "cosine", "T_max": 100}, "noise": 0.1, "seed": 1}
    whole = sweep(surface, "sgd", {}, ROSENBROCK_START, x, y, **kw)
    monkeypatch.setattr(sweep_module, "_BLOCK_CELLS", 7)
    monkeypatch.setattr(sweep_module, "_TIME_CHUNK", 13)
    pieces = sweep(surface, "sgd", {}, ROSENBROCK_START, x, y, **kw)
    for name in ("final_loss", "final_position", "steps_to_tol", "diverged_at"):
        assert getattr(whole, name).tobytes() == getattr(pieces, name).tobytes(), name


def test_deterministic_and_never_nan():
    surface = surfaces.get("rosenbrock")
    x, y = parse_axis("lr=1e-4:10:log:30"), parse_axis("momentum=0:0.99:20")
    a = sweep(surface, "sgd", {}, ROSENBROCK_START, x, y, steps=200)
    b = sweep(surface, "sgd", {}, ROSENBROCK_START, x, y, steps=200)
    assert a.final_loss.tobytes() == b.final_loss.tobytes()
    assert a.diverged.sum() > 100  # most large learning rates blow up
    assert np.isfinite(a.final_loss).all() and np.isfinite(a.final_position).all()
    assert not np.isnan(a.steps_to_tol).any()
    assert ((a.diverged_at >= 1) == a.diverged).all()
    assert (a.diverged_at[~a.diverged] == -1).all()


# ------------------------------------------------------------------ what the maps show
def test_bowl_plain_gd_diverges_exactly_where_lr_exceeds_one():
    """f = x² + y²: x ← (1 − 2γ)x, so |1 − 2γ| > 1 ⇔ γ > 1. At γ = 1 it bounces forever."""
    surface = surfaces.get("bowl")
    lr = np.concatenate([np.linspace(0.05, 1.0, 20), np.linspace(1.05, 2.0, 20)])
    x = Axis("lr", lr)
    y = parse_axis("dampening=0:0.5:3")  # inert without momentum: every row is the same
    r = sweep(surface, "sgd", {}, (1.5, 1.0), x, y, steps=300)
    expected = np.broadcast_to(lr > 1.0, r.shape)
    assert (r.diverged == expected).all()
    assert (r.final_loss == r.final_loss[0]).all()
    converging = lr < 0.95
    assert np.isfinite(r.steps_to_tol[:, converging]).all()
    assert r.final_loss[0, lr == 1.0][0] == pytest.approx(1.5**2 + 1.0**2)  # the bounce


def test_bowl_heavy_ball_boundary_is_lr_one_plus_momentum():
    """Heavy ball on curvature h = 2 is stable iff 0 <= μ < 1 and γh < 2(1 + μ)."""
    surface = surfaces.get("bowl")
    x, y = parse_axis("lr=0.1:2:60"), parse_axis("momentum=0:0.8:9")
    r = sweep(surface, "sgd", {}, (1.5, 1.0), x, y, steps=2000)
    limit = 1.0 + y.values[:, None]
    lr = x.values[None, :]
    assert r.diverged[lr > 1.03 * limit].all()
    assert not r.diverged[lr < limit].any()


def test_momentum_helps_on_the_ravine():
    """κ = 50: the heavy ball's optimal pair (γ = 4/(√L + √μ)², β = ((√κ − 1)/(√κ + 1))²)
    reaches the tolerance in far fewer steps than the best plain GD on the same lr axis."""
    kappa = 50.0
    surface = surfaces.get("ravine", kappa=kappa)
    lr_opt = 4 / (math.sqrt(kappa) + 1) ** 2
    mu_opt = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    lr = np.unique(np.append(np.geomspace(1e-3, 0.1, 40), lr_opt))
    mu = np.unique(np.append(np.linspace(0.0, 0.9, 10), mu_opt))
    r = sweep(surface, "sgd", {}, (-2.5, 1.0), Axis("lr", lr, log=True), Axis("momentum", mu),
              steps=1000)  # fmt: skip
    assert r.tol_kind == "loss" and r.f_star == 0.0
    best_gd = r.steps_to_tol[mu == 0.0].min()
    at_opt = r.steps_to_tol[mu == mu_opt, lr == lr_opt][0]
    assert math.isfinite(best_gd) and math.isfinite(at_opt)
    assert at_opt < best_gd / 2


def test_without_a_known_minimum_the_tolerance_is_on_the_gradient():
    """The saddle x² − y² has no minimum: a start on the ridge slides into the saddle point,
    where the gradient vanishes, and that is what the tolerance measures there."""
    surface = surfaces.get("saddle")
    r = sweep(surface, "sgd", {}, (-1.8, 0.0), parse_axis("lr=0.01:0.1:3"),
              parse_axis("momentum=0:0.5:2"), steps=600, tol=1e-3)  # fmt: skip
    assert r.tol_kind == "grad" and r.f_star is None
    assert np.isfinite(r.steps_to_tol).all()
    sim = Simulation(surface, [RunSpec("c", "sgd", {"lr": 0.01}, (-1.8, 0.0))])
    sim.step(600)
    g = np.hypot(*sim.history(0).gradients.T)
    assert r.steps_to_tol[0, 0] == np.flatnonzero(g < 1e-3)[0]


def test_start_that_already_meets_the_tolerance_counts_zero():
    r = sweep(surfaces.get("bowl"), "sgd", {}, (0.0, 0.0), parse_axis("lr=0.1:0.5:3"),
              parse_axis("momentum=0:0.5:2"), steps=5)  # fmt: skip
    assert (r.steps_to_tol == 0).all()


def test_base_value_of_the_run_for_the_cross():
    r = sweep(surfaces.get("bowl"), "adam", {"lr": 0.05, "betas": (0.8, 0.99)}, (1.0, 1.0),
              parse_axis("lr=0.01:0.1:3"), parse_axis("beta2=0.9:0.999:3"), steps=3)  # fmt: skip
    assert r.base_value(r.x) == 0.05 and r.base_value(r.y) == 0.99
    r = sweep(surfaces.get("bowl"), "sgd", {}, (1.0, 1.0), parse_axis("lr=0.01:0.1:3"),
              parse_axis("momentum=0:0.5:2"), steps=3)  # fmt: skip
    assert r.base_value(r.x) == 1e-3 and r.base_value(r.y) == 0.0  # torch's defaults


# ------------------------------------------------------------------ refusals
BOWL = surfaces.get("bowl")
LR = parse_axis("lr=0.01:0.1:3")
MU = parse_axis("momentum=0:0.5:2")


@pytest.mark.parametrize(
    ("optimizer", "params", "x", "y", "needle"),
    [
        ("sgd", {}, Axis("momentun", [0.0, 0.5]), LR, "cannot sweep 'momentun'"),
        ("sgd", {}, Axis("nesterov", [0.0, 1.0]), LR, "is a flag"),
        ("adam", {}, Axis("betas", [0.1, 0.5]), LR, "sweep its halves: beta1, beta2"),
        ("sgd", {}, LR, Axis("lr", [0.5, 1.0]), "both sweep 'lr'"),
        ("sgd", {}, LR, Axis("momentum", [-0.5, 0.5]), "momentum: values must be >= 0"),
        ("adam", {}, LR, Axis("beta1", [0.5, 1.0]), "beta1: values must be in [0, 1)"),
        ("sgd", {"nesterov": True}, LR, MU, "Nesterov momentum requires a momentum"),
        ("sgd", {"momentm": 0.5}, LR, MU, "Unknown hyperparameter 'momentm'"),
        ("sgdd", {}, LR, MU, "Unknown optimizer"),
        (
            "sgd", {}, Axis("lr", np.linspace(0.01, 1, 2001)),
            Axis("momentum", np.linspace(0, 0.9, 2001)), "too many",
        ),
    ],
)  # fmt: skip
def test_bad_sweeps_are_refused_naming_the_problem(optimizer, params, x, y, needle):
    with pytest.raises(ValueError) as e:
        sweep(BOWL, optimizer, params, (1.0, 1.0), x, y, steps=10)
    assert needle in str(e.value)


def test_too_many_cells_is_refused_before_any_work():
    n = math.isqrt(MAX_CELLS) + 1
    x = Axis("lr", np.linspace(0.01, 1, n))
    y = Axis("momentum", np.linspace(0, 0.9, n))
    with pytest.raises(ValueError, match="cells is too many"):
        sweep(BOWL, "sgd", {}, (1.0, 1.0), x, y, steps=10)


@pytest.mark.parametrize(
    ("values", "log", "needle"),
    [
        ([], False, "at least one value"),
        ([0.1, 0.1], False, "must increase"),
        ([0.2, 0.1], False, "must increase"),
        ([0.1, float("nan")], False, "finite"),
        ([0.0, 0.1], True, "log axis needs values > 0"),
    ],
)
def test_axis_values_are_checked(values, log, needle):
    with pytest.raises(ValueError) as e:
        Axis("lr", values, log=log)
    assert needle in str(e.value)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"steps": -1}, "steps must be an integer"),
        ({"steps": 1.5}, "steps must be an integer"),
        ({"steps": 5, "tol": 0.0}, "tol must be"),
        ({"steps": 5, "noise": -1.0}, "noise must be"),
        ({"steps": 5, "schedule": {"gamma": 0.5}}, "schedule needs a 'name'"),
    ],
)
def test_bad_run_settings_are_refused(kw, needle):
    with pytest.raises(ValueError) as e:
        sweep(BOWL, "sgd", {}, (1.0, 1.0), LR, MU, **kw)
    assert needle in str(e.value)
