"""Optimizers: torch agreement, convergence, vectorised hyperparameters, state, validation."""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdsim.engine import optimizers

HERE = Path(__file__).parent
GOLDEN = json.loads((HERE / "data" / "torch_golden.json").read_text())


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "make_torch_golden", HERE / "make_torch_golden.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()
ALL = optimizers.names()


def run(opt, theta, grad_fn, steps, hessian_fn=None):
    """Positions (steps + 1, n, dim) of ``opt`` from ``theta``."""
    theta = np.array(theta, dtype=float)
    state = opt.init(theta)
    out = [theta]
    for _ in range(steps):
        kw = {"hessian": hessian_fn(theta)} if hessian_fn else {}
        delta, state = opt.update(grad_fn(theta), state, theta, **kw)
        theta = theta + delta
        out.append(theta)
    return np.array(out), state


def quad(a, b=(0.0, 0.0)):
    """f = ½θᵀAθ + bᵀθ: gradient and (constant) Hessian for (n, dim) batches."""
    a, b = np.array(a, dtype=float), np.array(b, dtype=float)
    return (lambda th: th @ a + b), (lambda th: np.broadcast_to(a, (len(th), *a.shape)).copy())


# ---------------------------------------------------------------------------- torch agreement


def _case_id(case):
    return f"{case['name']}-" + "-".join(f"{k}={v}" for k, v in case["hyper"].items())


@pytest.mark.parametrize("case", GOLDEN["optimizers"], ids=_case_id)
def test_trajectory_matches_torch_golden(case):
    ours, _ = run(
        optimizers.create(case["name"], **case["hyper"]), GEN.STARTS, GEN.gradient, GEN.STEPS
    )
    np.testing.assert_allclose(ours, np.array(case["trajectory"]), rtol=1e-12, atol=1e-13)


def test_golden_covers_every_torch_optimizer_and_flag():
    seen: dict[str, set] = {}
    for case in GOLDEN["optimizers"]:
        seen.setdefault(case["name"], set()).update(case["hyper"])
    for name in GEN.TORCH_CLASS:
        flags = {p.name for p in optimizers.info(name).params} - {"lr"}
        assert flags <= seen[name], f"{name}: no golden case sets {flags - seen[name]}"


@pytest.mark.parametrize(
    "name, hyper",
    GEN.OPTIMIZER_CASES,
    ids=[f"{n}-{i}" for i, (n, _) in enumerate(GEN.OPTIMIZER_CASES)],
)
def test_trajectory_matches_torch_live(name, hyper):
    pytest.importorskip("torch")
    ours, _ = run(optimizers.create(name, **hyper), GEN.STARTS, GEN.gradient, GEN.STEPS)
    np.testing.assert_allclose(ours, GEN.torch_trajectory(name, hyper), rtol=1e-12, atol=1e-13)


def test_defaults_and_names_are_torch_constructor_args():
    """A PyTorch user can paste torch's keyword arguments; the defaults are torch's."""
    torch_defaults = {
        "sgd": {"lr": 1e-3, "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False},
        "adagrad": {"lr": 1e-2, "lr_decay": 0, "weight_decay": 0,
                    "initial_accumulator_value": 0, "eps": 1e-10},
        "rmsprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0, "momentum": 0,
                    "centered": False},
        "adadelta": {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0},
        "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
                 "amsgrad": False, "decoupled_weight_decay": False},
        "adamw": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2,
                  "amsgrad": False},
        "nadam": {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
                  "momentum_decay": 4e-3, "decoupled_weight_decay": False},
        "radam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
                  "decoupled_weight_decay": False},
        "adamax": {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0},
        "newton": {"lr": 1.0, "damping": 0.0},
        "lion": {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0},
    }  # fmt: skip
    for name, expected in torch_defaults.items():
        got = {p.name: p.default for p in optimizers.info(name).params}
        assert got == expected, name
        assert optimizers.create(name).hyper == {k: v for k, v in got.items()}


def test_defaults_match_installed_torch():
    torch = pytest.importorskip("torch")
    for name, cls_name in GEN.TORCH_CLASS.items():
        sig = inspect.signature(getattr(torch.optim, cls_name).__init__)
        for p in optimizers.info(name).params:
            assert p.name in sig.parameters, (name, p.name)
            assert sig.parameters[p.name].default == p.default, (name, p.name)


# ---------------------------------------------------------------------------- metadata


def test_catalogue_lists_the_eleven_ids_in_order():
    assert ALL == [
        "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "nadam", "radam", "adamax",
        "newton", "lion",
    ]  # fmt: skip
    assert list(optimizers.CATALOGUE) == ALL


@pytest.mark.parametrize("name", ALL)
def test_metadata_is_complete_and_defaults_lie_in_their_range(name):
    info = optimizers.info(name)
    assert info.name == name and info.display_name and info.idea and info.rule
    assert info.needs_hessian == (name == "newton")
    for p in info.params:
        assert p.kind in {"float", "bool", "pair"} and p.doc
        if p.kind == "bool":
            assert p.default is False
            continue
        values = p.default if p.kind == "pair" else (p.default,)
        for v in values:
            assert p.low is None or (v > p.low if p.low_open else v >= p.low)
            assert p.high is None or (v < p.high if p.high_open else v <= p.high)
    assert info.params[0].name == "lr" and info.params[0].log


def test_docstrings_carry_the_rules_and_citations():
    assert "Sutskever" in optimizers._build_sgd.__doc__
    assert "Chen et al., 2023" in optimizers._build_lion.__doc__
    assert "Nocedal & Wright" in optimizers._build_newton.__doc__
    assert "optax" in optimizers.__doc__ and "eps" in optimizers.__doc__


# ---------------------------------------------------------------------------- convergence

BOWL = quad([[2.0, 0.0], [0.0, 2.0]])  # x² + y², minimum (0, 0)
_c, _s = math.cos(0.5), math.sin(0.5)
_R = np.array([[_c, -_s], [_s, _c]])
RAVINE = quad(_R @ np.diag([1.0, 10.0]) @ _R.T)  # ½(u² + 10v²) rotated, minimum (0, 0)
# (x + 2y − 7)² + (2x + y − 5)² = ½θᵀAθ + bᵀθ + c with A = [[10, 8], [8, 10]], b = (−34, −38)
BOOTH = quad([[10.0, 8.0], [8.0, 10.0]], (-34.0, -38.0))
SURFACES = {
    "bowl": (BOWL, (0.0, 0.0)),
    "ravine": (RAVINE, (0.0, 0.0)),
    "booth": (BOOTH, (1.0, 3.0)),
}
STARTS = [[1.5, -1.0], [-2.0, 0.5], [0.3, 2.5]]

# Sensible settings per optimizer (steps, tolerance on the distance to the minimum).
SETTINGS = {
    "sgd-plain": ("sgd", {"lr": 0.05}, 600, 1e-6),
    "sgd-heavy-ball": ("sgd", {"lr": 0.02, "momentum": 0.9}, 600, 1e-6),
    "sgd-nesterov": ("sgd", {"lr": 0.02, "momentum": 0.9, "nesterov": True}, 600, 1e-6),
    "adagrad": ("adagrad", {"lr": 0.5}, 3000, 1e-4),
    "rmsprop": ("rmsprop", {"lr": 1e-3}, 8000, 1e-2),
    "rmsprop-centered-momentum": (
        "rmsprop", {"lr": 1e-3, "momentum": 0.9, "centered": True}, 4000, 1e-2),
    # Adadelta's step size is self-referential (√u/√v): with lr = 1 it wanders in a ravine for
    # thousands of steps; a smaller lr and a larger eps settle it.
    "adadelta": ("adadelta", {"lr": 0.1, "rho": 0.9, "eps": 1e-2}, 4000, 1e-6),
    "adam": ("adam", {"lr": 0.05}, 2000, 1e-3),
    "adam-amsgrad": ("adam", {"lr": 0.05, "amsgrad": True}, 2000, 1e-3),
    "adamw": ("adamw", {"lr": 0.05, "weight_decay": 0.0}, 2000, 1e-3),
    "nadam": ("nadam", {"lr": 0.05}, 2000, 1e-3),
    "radam": ("radam", {"lr": 0.05}, 2000, 1e-3),
    "adamax": ("adamax", {"lr": 0.05}, 2000, 1e-3),
    "newton": ("newton", {"lr": 1.0}, 3, 1e-12),
    "newton-damped": ("newton", {"lr": 1.0, "damping": 0.5}, 200, 1e-6),
    "lion": ("lion", {"lr": 1e-3}, 6000, 1e-2),
}  # fmt: skip


def test_every_optimizer_has_a_convergence_setting():
    assert {s[0] for s in SETTINGS.values()} == set(ALL)


@pytest.mark.parametrize("surface", list(SURFACES))
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_converges_to_the_known_minimum(setting, surface):
    name, hyper, steps, tol = SETTINGS[setting]
    (grad, hess), minimum = SURFACES[surface]
    traj, _ = run(optimizers.create(name, **hyper), STARTS, grad, steps, hess)
    dist = np.linalg.norm(traj[-1] - np.array(minimum), axis=1)
    assert np.all(dist < tol), dist


def test_newton_lands_on_a_quadratic_minimum_in_one_step():
    for dim in (2, 3, 5):
        rng = np.random.default_rng(dim)
        m = rng.normal(size=(dim, dim))
        a = m @ m.T + dim * np.eye(dim)
        b = rng.normal(size=dim)
        grad, hess = quad(a, b)
        theta = rng.normal(size=(4, dim))
        traj, _ = run(optimizers.create("newton", lr=1.0, damping=0.0), theta, grad, 1, hess)
        np.testing.assert_allclose(traj[1], np.broadcast_to(np.linalg.solve(a, -b), (4, dim)),
                                   rtol=1e-12, atol=1e-12)  # fmt: skip


def test_newton_heads_for_a_saddle_and_needs_the_hessian():
    grad, hess = quad([[2.0, 0.0], [0.0, -2.0]])  # x² − y²: a saddle at the origin
    traj, _ = run(optimizers.create("newton"), [[0.7, -0.4]], grad, 1, hess)
    np.testing.assert_allclose(traj[1], [[0.0, 0.0]], atol=1e-15)
    opt = optimizers.create("newton")
    theta = np.zeros((1, 2))
    with pytest.raises(ValueError, match="hessian"):
        opt.update(theta, opt.init(theta), theta)
    with pytest.raises(ValueError, match="hessian"):
        opt.update(theta, opt.init(theta), theta, hessian=np.zeros((1, 3, 3)))


def test_newton_singular_hessian_spoils_only_its_own_ball():
    opt = optimizers.create("newton")
    theta = np.array([[1.0, 1.0], [1.0, 1.0]])
    hess = np.array([[[0.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 2.0]]])
    delta, _ = opt.update(2 * theta, opt.init(theta), theta, hessian=hess)
    assert not np.all(np.isfinite(delta[0]))
    np.testing.assert_allclose(delta[1], [-1.0, -1.0])
    # the general-dimension path too
    theta3 = np.ones((2, 3))
    hess3 = np.stack([np.zeros((3, 3)), 2 * np.eye(3)])
    delta3, _ = opt.update(2 * theta3, opt.init(theta3), theta3, hessian=hess3)
    assert not np.all(np.isfinite(delta3[0]))
    np.testing.assert_allclose(delta3[1], [-1.0, -1.0, -1.0])


def test_lion_moves_every_coordinate_by_exactly_lr():
    opt = optimizers.create("lion", lr=0.01, weight_decay=0.0)
    theta = np.array([[3.0, -2.0], [0.5, 0.0]])
    grad = np.array([[100.0, -1e-6], [-3.0, 0.0]])
    delta, state = opt.update(grad, opt.init(theta), theta)
    np.testing.assert_array_equal(delta, [[-0.01, 0.01], [0.01, 0.0]])
    np.testing.assert_allclose(state.exp_avg, 0.01 * grad)  # m ← β₂·0 + (1 − β₂)g
    decayed, _ = optimizers.create("lion", lr=0.01, weight_decay=0.5).update(
        grad, opt.init(theta), theta
    )
    np.testing.assert_allclose(decayed, -0.01 * (np.sign(grad) + 0.5 * theta))


def test_heavy_ball_equals_polyak_form_with_constant_lr():
    grad, _ = RAVINE
    lr, mu = 0.03, 0.8
    traj, _ = run(optimizers.create("sgd", lr=lr, momentum=mu), STARTS, grad, 40)
    prev, cur = traj[0], traj[0]
    for k in range(40):
        prev, cur = cur, cur - lr * grad(cur) + mu * (cur - prev)
        np.testing.assert_allclose(traj[k + 1], cur, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------- vectorised hyper


def _grad(theta):
    # Row-wise on purpose: `theta @ matrix` goes through BLAS, whose kernels (FMA on AVX-512
    # machines) round a row differently depending on how many rows share the call, which would
    # make "a grid steps like each row alone" fail for a reason that is not the optimizer's.
    x, y = theta[:, :1], theta[:, 1:]
    return np.sin(3 * theta) + np.concatenate([x + 0.3 * y, 0.3 * x + 2.0 * y], axis=1)


def _rows_vs_grid(name, rows, steps=12, step_offsets=None):
    """Step a grid of settings at once and each row alone; both must agree bit for bit."""
    n = len(rows)
    rng = np.random.default_rng(7)
    theta0 = rng.normal(size=(n, 2))
    keys = rows[0].keys()
    grid = {}
    for k in keys:
        vals = [r[k] for r in rows]
        if isinstance(vals[0], tuple):
            grid[k] = tuple(np.array([v[i] for v in vals]).reshape(-1, 1) for i in range(2))
        else:
            grid[k] = np.array(vals).reshape(-1, 1)

    def hess(th):
        return np.broadcast_to(np.array([[2.0, 0.3], [0.3, 3.0]]), (len(th), 2, 2))

    hess_fn = hess if name == "newton" else None
    opt = optimizers.create(name, **grid)
    state = opt.init(theta0)
    if step_offsets is not None:
        state = state._replace(step=np.array(step_offsets, dtype=float).reshape(-1, 1))
    theta = theta0
    for _ in range(steps):
        kw = {"hessian": hess_fn(theta)} if hess_fn else {}
        delta, state = opt.update(_grad(theta), state, theta, **kw)
        theta = theta + delta
    for i, row in enumerate(rows):
        single = optimizers.create(name, **row)
        s = single.init(theta0[i : i + 1])
        if step_offsets is not None:
            s = s._replace(step=np.array([[float(step_offsets[i])]]))
        th = theta0[i : i + 1]
        for _ in range(steps):
            kw = {"hessian": hess_fn(th)} if hess_fn else {}
            d, s = single.update(_grad(th), s, th, **kw)
            th = th + d
        np.testing.assert_array_equal(theta[i : i + 1], th, err_msg=f"{name} row {i}: {row}")
        for field, grid_buf, row_buf in zip(state._fields, state, s, strict=True):
            np.testing.assert_array_equal(grid_buf[i : i + 1], row_buf, err_msg=field)


GRIDS = {
    "sgd": [
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
        {"lr": 0.01, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.1, "nesterov": False},
        {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.0, "nesterov": False},
        {"lr": 0.05, "momentum": 0.8, "dampening": 0.0, "weight_decay": 0.2, "nesterov": True},
    ],
    "adagrad": [
        {"lr": 0.5, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0},
        {"lr": 0.1, "lr_decay": 0.2, "weight_decay": 0.1, "initial_accumulator_value": 1.0},
    ],
    "rmsprop": [
        {"lr": 0.01, "alpha": 0.99, "momentum": 0.0, "centered": False, "weight_decay": 0.0},
        {"lr": 0.01, "alpha": 0.9, "momentum": 0.8, "centered": True, "weight_decay": 0.1},
        {"lr": 0.02, "alpha": 0.5, "momentum": 0.0, "centered": True, "weight_decay": 0.0},
        {"lr": 0.02, "alpha": 0.95, "momentum": 0.5, "centered": False, "weight_decay": 0.0},
    ],
    "adadelta": [
        {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0},
        {"lr": 3.0, "rho": 0.5, "eps": 1e-3, "weight_decay": 0.1},
    ],
    "adam": [
        {"lr": 0.1, "betas": (0.9, 0.999), "amsgrad": False, "weight_decay": 0.0,
         "decoupled_weight_decay": False},
        {"lr": 0.05, "betas": (0.3, 0.9), "amsgrad": True, "weight_decay": 0.1,
         "decoupled_weight_decay": False},
        {"lr": 0.05, "betas": (0.6, 0.99), "amsgrad": True, "weight_decay": 0.2,
         "decoupled_weight_decay": True},
        {"lr": 0.01, "betas": (0.0, 0.5), "amsgrad": False, "weight_decay": 0.0,
         "decoupled_weight_decay": True},
    ],
    "adamw": [
        {"lr": 0.1, "betas": (0.9, 0.999), "weight_decay": 0.01, "amsgrad": False},
        {"lr": 0.05, "betas": (0.3, 0.9), "weight_decay": 0.5, "amsgrad": True},
    ],
    "nadam": [
        {"lr": 0.1, "betas": (0.9, 0.999), "momentum_decay": 4e-3, "weight_decay": 0.0,
         "decoupled_weight_decay": False},
        {"lr": 0.05, "betas": (0.8, 0.99), "momentum_decay": 0.1, "weight_decay": 0.1,
         "decoupled_weight_decay": True},
        {"lr": 0.05, "betas": (0.5, 0.9), "momentum_decay": 0.0, "weight_decay": 0.1,
         "decoupled_weight_decay": False},
    ],
    "radam": [
        {"lr": 0.1, "betas": (0.9, 0.999), "weight_decay": 0.0, "decoupled_weight_decay": False},
        {"lr": 0.1, "betas": (0.3, 0.9), "weight_decay": 0.1, "decoupled_weight_decay": True},
        {"lr": 0.05, "betas": (0.9, 0.6), "weight_decay": 0.1, "decoupled_weight_decay": False},
    ],
    "adamax": [
        {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
        {"lr": 0.05, "betas": (0.3, 0.9), "eps": 1e-3, "weight_decay": 0.1},
    ],
    "newton": [{"lr": 1.0, "damping": 0.0}, {"lr": 0.5, "damping": 2.0}],
    "lion": [
        {"lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.0},
        {"lr": 1e-2, "betas": (0.5, 0.9), "weight_decay": 0.3},
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", ALL)
def test_grid_of_settings_steps_exactly_like_each_row_alone(name):
    _rows_vs_grid(name, GRIDS[name])


@pytest.mark.parametrize("name", ALL)
def test_grid_with_balls_at_different_steps(name):
    rows = GRIDS[name]
    _rows_vs_grid(name, rows, steps=6, step_offsets=[3 * i for i in range(len(rows))])


def test_issue_example_sgd_grid():
    opt = optimizers.create("sgd", lr=np.array([[0.1], [0.01]]), momentum=np.array([[0.9], [0.0]]))
    theta = np.array([[1.0, 2.0], [1.0, 2.0]])
    grad = np.array([[0.5, -1.0], [0.5, -1.0]])
    state = opt.init(theta)
    for _ in range(2):
        delta, state = opt.update(grad, state, theta)
    # row 0: buffer g then 0.9g + g; row 1: no momentum
    np.testing.assert_allclose(delta, [[-0.1 * 1.9 * 0.5, 0.1 * 1.9], [-0.005, 0.01]])
    np.testing.assert_array_equal(state.momentum_buffer[1], [0.0, 0.0])


@settings(max_examples=40, deadline=None)
@given(
    lr=st.lists(st.floats(1e-4, 0.5), min_size=3, max_size=3),
    b1=st.lists(st.floats(0.0, 0.99), min_size=3, max_size=3),
    b2=st.lists(st.floats(0.5, 0.9999), min_size=3, max_size=3),
    flags=st.lists(st.booleans(), min_size=3, max_size=3),
    wd=st.lists(st.sampled_from([0.0, 0.01, 0.3]), min_size=3, max_size=3),
)
def test_property_adam_grid_equals_rows(lr, b1, b2, flags, wd):
    rows = [
        {"lr": lr[i], "betas": (b1[i], b2[i]), "amsgrad": flags[i], "weight_decay": wd[i],
         "decoupled_weight_decay": not flags[i]}
        for i in range(3)
    ]  # fmt: skip
    _rows_vs_grid("adam", rows, steps=5, step_offsets=[0, 2, 5])


@settings(max_examples=40, deadline=None)
@given(
    mu=st.lists(st.sampled_from([0.0, 0.5, 0.9, 0.99]), min_size=4, max_size=4),
    tau=st.lists(st.sampled_from([0.0, 0.1, 0.5]), min_size=4, max_size=4),
    wd=st.lists(st.sampled_from([0.0, 0.1]), min_size=4, max_size=4),
    lr=st.lists(st.floats(1e-3, 0.2), min_size=4, max_size=4),
)
def test_property_sgd_grid_equals_rows(mu, tau, wd, lr):
    rows = [
        {"lr": lr[i], "momentum": mu[i], "dampening": tau[i], "weight_decay": wd[i],
         "nesterov": mu[i] > 0 and tau[i] == 0}
        for i in range(4)
    ]  # fmt: skip
    _rows_vs_grid("sgd", rows, steps=5, step_offsets=[0, 0, 1, 4])


@pytest.mark.parametrize(
    "name, hyper",
    [
        ("sgd", {"lr": 0.01, "momentum": 0.9}),
        ("sgd", {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
        ("sgd", {"lr": 0.01}),
        ("adam", {"lr": 0.01}),
        ("adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
        ("adamw", {"lr": 0.01, "amsgrad": True}),
    ],
)
def test_blocked_fast_path_equals_small_batches(name, hyper):
    """Many balls go through the blocked fast path; the numbers are those of small batches."""
    n = 2 * optimizers._BLOCK + 37
    rng = np.random.default_rng(1)
    theta0 = rng.normal(size=(n, 2))
    offsets = rng.integers(0, 3, size=(n, 1)).astype(float)
    opt = optimizers.create(name, **hyper)
    big = opt.init(theta0)._replace(step=offsets)
    theta = theta0
    for _ in range(4):
        lr = np.where(offsets > 1, 0.02, 0.01)  # a per-ball schedule, too
        delta, big = opt.update(_grad(theta), big, theta, lr=lr)
        theta = theta + delta
    for a in range(0, n, 1000):
        sl = slice(a, min(a + 1000, n))
        th, s = theta0[sl], opt.init(theta0[sl])._replace(step=offsets[sl])
        for _ in range(4):
            d, s = opt.update(_grad(th), s, th, lr=np.where(offsets[sl] > 1, 0.02, 0.01))
            th = th + d
        np.testing.assert_array_equal(theta[sl], th)
        for grid_buf, part in zip(big, s, strict=True):
            np.testing.assert_array_equal(grid_buf[sl], part)


# ---------------------------------------------------------------------------- state


@pytest.mark.parametrize("name", ALL)
def test_state_has_every_buffer_one_row_per_ball_and_a_step_counter(name):
    theta = np.zeros((5, 3))
    state = optimizers.create(name).init(theta)
    assert state.step.shape == (5, 1) and np.all(state.step == 0)
    for field, buf in zip(state._fields, state, strict=True):
        assert buf.dtype == np.float64 and buf.shape[0] == 5, field
    expected = {
        "sgd": {"momentum_buffer"},
        "adagrad": {"sum"},
        "rmsprop": {"square_avg", "grad_avg", "momentum_buffer"},
        "adadelta": {"square_avg", "acc_delta"},
        "adam": {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        "adamw": {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        "nadam": {"exp_avg", "exp_avg_sq", "mu_product"},
        "radam": {"exp_avg", "exp_avg_sq"},
        "adamax": {"exp_avg", "exp_inf"},
        "newton": set(),
        "lion": {"exp_avg"},
    }[name]
    assert set(state._fields) == expected | {"step"}


@pytest.mark.parametrize("name", ALL)
def test_update_is_pure(name):
    """Neither grad, theta nor any array of the old state changes; the old state stays usable."""
    hyper = GRIDS[name][-1]
    opt = optimizers.create(name, **hyper)
    rng = np.random.default_rng(2)
    theta = rng.normal(size=(3, 2))
    hess = np.broadcast_to(np.eye(2) * 2, (3, 2, 2)).copy()
    kw = {"hessian": hess} if name == "newton" else {}
    state = opt.init(theta)
    for _ in range(3):
        _, state = opt.update(_grad(theta), state, theta, **kw)
    grad = _grad(theta)
    copies = [a.copy() for a in (grad, theta, hess, *state)]
    d1, s1 = opt.update(grad, state, theta, **kw)
    for before, after in zip(copies, (grad, theta, hess, *state), strict=True):
        np.testing.assert_array_equal(before, after)
    d2, s2 = opt.update(grad, state, theta, **kw)  # same inputs, same outputs
    np.testing.assert_array_equal(d1, d2)
    for a, b in zip(s1, s2, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s1.step, state.step + 1)


@pytest.mark.parametrize("name", ALL)
def test_mid_run_hyperparameter_swap_keeps_the_state_valid(name):
    """Replace every hyperparameter (flags included) halfway; the old state feeds the new rule."""
    first, second = GRIDS[name][0], GRIDS[name][-1]

    def kw(th):
        if name != "newton":
            return {}
        return {"hessian": np.broadcast_to(np.eye(2) * 2, (len(th), 2, 2))}

    theta = np.array([[1.0, -1.0], [0.5, 2.0]])
    opt = optimizers.create(name, **first)
    state = opt.init(theta)
    for _ in range(5):
        delta, state = opt.update(_grad(theta), state, theta, **kw(theta))
        theta = theta + delta
    opt = optimizers.create(name, **second)
    for _ in range(5):
        delta, new = opt.update(_grad(theta), state, theta, **kw(theta))
        assert type(new) is type(state)
        for field, old_buf, buf in zip(state._fields, state, new, strict=True):
            assert buf.shape == old_buf.shape and np.all(np.isfinite(buf)), field
        state, theta = new, theta + delta
    assert np.all(state.step == 10) and np.all(np.isfinite(theta))


def test_momentum_switched_on_mid_run_starts_from_the_gradient_like_torch():
    theta = np.array([[1.0, 2.0]])
    plain = optimizers.create("sgd", lr=0.1)
    _, state = plain.update(np.array([[1.0, 1.0]]), plain.init(theta), theta)
    heavy = optimizers.create("sgd", lr=0.1, momentum=0.9)
    delta, state = heavy.update(np.array([[0.5, -0.5]]), state, theta)
    np.testing.assert_array_equal(state.momentum_buffer, [[0.5, -0.5]])  # buf = g, as torch
    np.testing.assert_array_equal(delta, [[-0.05, 0.05]])


def test_balls_keep_their_own_step_counters():
    """Balls at different steps in one call: Adam's bias correction uses each ball's own t."""
    opt = optimizers.create("adam", lr=0.1)
    theta = np.array([[1.0, 1.0], [1.0, 1.0]])
    grad = np.array([[1.0, 1.0], [1.0, 1.0]])
    young = opt.init(theta[:1])
    _, old = opt.update(grad[:1], opt.init(theta[:1]), theta[:1])
    joined = type(young)(*(np.concatenate(pair) for pair in zip(old, young, strict=True)))
    delta, after = opt.update(grad, joined, theta)
    np.testing.assert_array_equal(after.step, [[2.0], [1.0]])
    d_old, _ = opt.update(grad[:1], old, theta[:1])
    d_young, _ = opt.update(grad[:1], young, theta[:1])
    np.testing.assert_array_equal(delta, np.concatenate([d_old, d_young]))
    np.testing.assert_allclose(d_young, [[-0.1, -0.1]])  # Adam's first step is γ·sign(g)


def test_lr_override_equals_creating_with_that_lr():
    theta = np.array([[1.0, -2.0], [0.3, 0.4]])
    for name in ALL:
        kw = {"hessian": np.broadcast_to(np.eye(2), (2, 2, 2))} if name == "newton" else {}
        base = optimizers.create(name, lr=0.5)
        other = optimizers.create(name, lr=0.02)
        d1, _ = base.update(_grad(theta), base.init(theta), theta, lr=0.02, **kw)
        d2, _ = other.update(_grad(theta), other.init(theta), theta, **kw)
        np.testing.assert_array_equal(d1, d2, err_msg=name)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        base.update(_grad(theta), base.init(theta), theta, lr=-1.0)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        base.update(_grad(theta), base.init(theta), theta, lr=np.array([[0.1], [-0.1]]))


def test_wrong_state_or_shapes_are_refused():
    adam, sgd = optimizers.create("adam"), optimizers.create("sgd")
    theta = np.zeros((2, 2))
    with pytest.raises(ValueError, match="SGDState"):
        sgd.update(theta, adam.init(theta), theta)
    with pytest.raises(ValueError, match="shapes disagree"):
        sgd.update(np.zeros((3, 2)), sgd.init(theta), theta)
    with pytest.raises(ValueError, match="n_balls, dim"):
        sgd.init(np.zeros(3))


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "name, hyper, match",
    [
        ("sgd", {"lr": -0.1}, r"Invalid learning rate: -0\.1 \(lr must be >= 0\)"),
        ("adam", {"lr": float("nan")}, r"learning rate.*lr must be >= 0"),
        ("adam", {"betas": (1.0, 0.9)},
         r"beta parameter at index 0: 1\.0 \(betas\[0\] must be in \[0, 1\)\)"),
        ("nadam", {"betas": (0.9, -0.1)}, r"betas\[1\] must be in \[0, 1\)"),
        ("lion", {"betas": (0.9, 1.5)}, r"betas\[1\]"),
        ("adam", {"betas": 0.9}, r"betas must be a pair"),
        ("adam", {"eps": -1e-8}, r"Invalid epsilon value.*eps must be >= 0"),
        ("sgd", {"momentum": -0.5}, r"momentum.*>= 0"),
        ("sgd", {"dampening": 1.5}, r"dampening.*in \[0, 1\]"),
        ("sgd", {"weight_decay": -1}, r"weight_decay.*>= 0"),
        ("sgd", {"nesterov": True}, r"[Nn]esterov.*momentum"),
        ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, r"dampening"),
        ("sgd", {"nesterov": "yes"}, r"nesterov must be a bool"),
        ("sgd", {"lr": "fast"}, r"lr must be a number"),
        ("sgd", {"lr": True}, r"lr must be a number"),
        ("rmsprop", {"alpha": 1.2}, r"alpha.*in \[0, 1\]"),
        ("adadelta", {"rho": -0.1}, r"rho.*in \[0, 1\]"),
        ("adagrad", {"lr_decay": -1}, r"lr_decay.*>= 0"),
        ("adagrad", {"initial_accumulator_value": -1}, r"initial_accumulator_value.*>= 0"),
        ("nadam", {"momentum_decay": -1}, r"momentum_decay.*>= 0"),
        ("newton", {"damping": -1}, r"damping.*>= 0"),
        ("adam", {"momentum": 0.9}, r"Unknown hyperparameter 'momentum' for adam; valid.*betas"),
        ("sgd", {"lr": np.array([[0.1], [-2.0]])}, r"learning rate: -2\.0"),
        ("sgd", {"lr": np.ones((2, 2))}, r"shape \(2, 2\).*\(n, 1\)"),
        ("sgd", {"momentum": np.array([[0.9], [0.0]]), "nesterov": np.array([[True], [True]])},
         r"[Nn]esterov"),
    ],
)  # fmt: skip
def test_invalid_hyperparameters_are_refused_with_the_name_and_range(name, hyper, match):
    with pytest.raises(ValueError, match=match):
        optimizers.create(name, **hyper)


def test_unknown_optimizer_lists_the_valid_names():
    with pytest.raises(ValueError, match="Unknown optimizer 'momentum'; valid names are: sgd, "):
        optimizers.create("momentum")
    with pytest.raises(ValueError, match="lion"):
        optimizers.info("LION")


def test_hyperparameters_are_copied_and_frozen():
    lr = np.array([[0.1], [0.2]])
    opt = optimizers.create("sgd", lr=lr)
    lr[0, 0] = 5.0
    assert opt.hyper["lr"][0, 0] == 0.1
    with pytest.raises(ValueError):
        opt.hyper["lr"][0, 0] = 1.0
    assert optimizers.create("sgd", lr=np.array([[0.3]])).hyper["lr"] == 0.3  # one value: a scalar


def test_power_gives_the_same_bits_whatever_the_shapes():
    """NumPy's own np.power does not (0-d, broadcast and contiguous kernels differ)."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.0, 1.0, (500, 1))
    exp = rng.integers(0, 9, (500, 1)).astype(float)
    full = optimizers.power(base, exp)
    for i in range(500):
        b, e = float(base[i, 0]), float(exp[i, 0])
        assert optimizers.power(b, e) == full[i, 0]
        assert optimizers.power(b, exp[i : i + 1])[0, 0] == full[i, 0]
        assert optimizers.power(base[i : i + 1], e)[0, 0] == full[i, 0]
    assert isinstance(optimizers.power(0.5, 2.0), np.floating)


@pytest.mark.parametrize("name", ALL)
def test_an_empty_group_steps_to_empty_arrays(name):
    opt = optimizers.create(name)
    theta = np.zeros((0, 2))
    kw = {"hessian": np.zeros((0, 2, 2))} if name == "newton" else {}
    delta, state = opt.update(theta, opt.init(theta), theta, **kw)
    assert delta.shape == (0, 2) and state.step.shape == (0, 1)
