"""The step explainer tells the engine's real next step; internals match hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gdsim.engine import optimizers, surfaces
from gdsim.engine.explain import explain, explain_run, fmt, fmt_vec, internals
from gdsim.engine.simulation import RunSpec, Simulation, Status

# Every optimizer of the engine with every flag it has, alone and combined.
CASES: list[tuple[str, dict]] = [
    ("sgd", {"lr": 0.02}),
    ("sgd", {"lr": 0.02, "momentum": 0.9}),
    ("sgd", {"lr": 0.02, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.02, "momentum": 0.8, "dampening": 0.3}),
    ("sgd", {"lr": 0.02, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "centered": True}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.5}),
    ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1, "alpha": 0.9}),
    ("adadelta", {}),
    ("adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1}),
    ("adam", {"lr": 0.05}),
    ("adam", {"lr": 0.05, "amsgrad": True}),
    ("adam", {"lr": 0.05, "weight_decay": 0.1}),
    ("adam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adam", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True, "betas": (0.6, 0.9)}),
    ("adamw", {"lr": 0.05}),
    ("adamw", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.2}),
    ("nadam", {"lr": 0.05}),
    ("nadam", {"lr": 0.05, "weight_decay": 0.1}),
    ("nadam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("radam", {"lr": 0.05}),
    ("radam", {"lr": 0.05, "weight_decay": 0.1}),
    ("radam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamax", {"lr": 0.05}),
    ("adamax", {"lr": 0.05, "weight_decay": 0.1, "betas": (0.3, 0.5)}),
    ("newton", {"lr": 0.5}),
    ("newton", {"lr": 0.5, "damping": 2.0}),
    ("lion", {"lr": 0.01}),
    ("lion", {"lr": 0.01, "weight_decay": 0.5}),
]

#: Steps before the explained one: the first step (empty state), early, and past RAdam's warm-up.
PRIOR = (0, 1, 7)


def _case_id(case: tuple[str, dict]) -> str:
    name, hyper = case
    return name + "".join(f"-{k}={v}" for k, v in hyper.items())


def _simulation(name: str, hyper: dict, noise: float = 0.0, schedule=None) -> Simulation:
    """The case as run 1, grouped with a run of the same optimizer and other settings (so its
    state rows live inside a group) and with a run of another optimizer."""
    other = dict(hyper, lr=hyper.get("lr", 1.0) * 0.5)
    runs = [
        RunSpec("other", "sgd", {"lr": 0.01, "momentum": 0.5}, (-1.0, 1.5)),
        RunSpec("case", name, dict(hyper), (1.2, -0.7), schedule=schedule, noise=noise),
        RunSpec("sibling", name, other, (-0.8, 0.9), noise=noise),
    ]
    # a tilted, anisotropic quadratic: gradients differ per axis and are never zero
    surface = surfaces.from_formula("1.5*x^2 + 0.4*x*y + 0.3*y^2 + 0.2*x - 0.1*y")
    return Simulation(surface, runs, seed=3)


def _check_against_engine(sim: Simulation, i: int) -> None:
    rs = sim.run_state(i)
    assert rs.status is Status.RUNNING
    ex = explain_run(rs)
    # 1. the optimizer's own update, from the same state and gradient
    opt = optimizers.create(rs.optimizer, **rs.params)
    kw = {"hessian": rs.hessian[None]} if rs.hessian is not None else {}
    delta, _ = opt.update(rs.gradient[None], rs.state, rs.position[None], lr=rs.lr, **kw)
    np.testing.assert_allclose(ex.delta, delta[0], rtol=1e-12, atol=1e-300)
    # 2. the simulation's actual next step
    before = sim.history(i).positions[-1].copy()
    sim.step(1)
    after = sim.history(i).positions[-1]
    np.testing.assert_array_equal(before, rs.position)
    np.testing.assert_allclose(after - before, ex.delta, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(after, ex.new_position, rtol=1e-12, atol=1e-300)
    assert ex.step == int(rs.state.step[0, 0]) + 1  # the optimizer's t (restarts with it)
    assert ex.stages[0].title == "Gradient" and ex.stages[-1].title == "New position"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("prior", PRIOR)
def test_explained_delta_is_the_engines_next_step(case, prior):
    name, hyper = case
    sim = _simulation(name, hyper)
    sim.step(prior)
    _check_against_engine(sim, 1)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_explained_step_with_gradient_noise_and_a_schedule(case):
    name, hyper = case
    sim = _simulation(name, hyper, noise=0.3, schedule={"name": "cosine", "T_max": 20})
    sim.step(3)
    rs = sim.run_state(1)
    assert np.all(rs.noise != 0)
    assert rs.lr != hyper.get("lr", rs.lr) or name == "adadelta"
    _check_against_engine(sim, 1)
    _check_against_engine(sim, 2)  # the sibling, also noisy, in the same group


def test_peeking_the_noise_does_not_change_the_stream():
    a = _simulation("sgd", {"lr": 0.02}, noise=0.5)
    b = _simulation("sgd", {"lr": 0.02}, noise=0.5)
    for _ in range(3):
        a.run_state(1)
        a.run_state(2)
    a.step(5)
    b.step(5)
    np.testing.assert_array_equal(a.history(1).positions, b.history(1).positions)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_bit_exact(case):
    """Written operation for operation in the engine's order (the same ``power`` calls, the
    same lerp branch), the explained landing point is the engine's to the last bit, with
    noise and a schedule too: a reordering that only rounds differently fails here."""
    name, hyper = case
    for noise, schedule in ((0.0, None), (0.3, {"name": "cosine", "T_max": 20})):
        sim = _simulation(name, hyper, noise=noise, schedule=schedule)
        for _ in range(12):
            rs = sim.run_state(1)
            ex = explain(rs.optimizer, rs.params, rs.state, rs.position, rs.gradient, rs.lr,
                         hessian=rs.hessian)  # fmt: skip
            sim.step(1)
            np.testing.assert_array_equal(sim.history(1).positions[-1], ex.new_position)


def test_captions_carry_this_steps_numbers():
    sim = _simulation("sgd", {"lr": 0.01, "momentum": 0.9})
    sim.step(4)
    rs = sim.run_state(1)
    ex = explain(rs.optimizer, rs.params, rs.state, rs.position, rs.gradient, rs.lr)
    text = "\n".join(s.caption for s in ex.stages)
    buf = rs.state.momentum_buffer[0]
    kept = buf * 0.9
    new_buf = kept + rs.gradient
    assert f"velocity μ × b = 0.9 × {fmt_vec(buf)} = {fmt_vec(kept)}" in text
    assert f"gradient g = ∇f(θ) = {fmt_vec(rs.gradient)}" in text
    assert f"new velocity b ← μb + g = {fmt_vec(kept)} + {fmt_vec(rs.gradient)}" in text
    assert fmt_vec(new_buf) in text
    assert f"−0.01 × {fmt_vec(new_buf)}" in text
    assert f"= {fmt_vec(ex.new_position)}" in ex.stages[-1].caption
    # the arrows are those numbers too
    arrows = {a.label: a for s in ex.stages for a in s.arrows}
    np.testing.assert_array_equal(arrows["b"].vector, new_buf)
    np.testing.assert_array_equal(arrows["step"].vector, ex.delta)
    assert arrows["step"].space == "position" and arrows["g"].space == "gradient"
    np.testing.assert_array_equal(ex.stages[-1].points[0].xy, ex.new_position)


def test_adam_captions_show_bias_correction_and_the_noise():
    sim = _simulation("adam", {"lr": 0.05}, noise=0.2)
    rs = sim.run_state(1)
    ex = explain(rs.optimizer, rs.params, rs.state, rs.position, rs.gradient, rs.lr,
                 true_gradient=rs.true_gradient, noise=rs.noise)  # fmt: skip
    text = "\n".join(s.caption for s in ex.stages)
    assert fmt_vec(rs.noise) in text and fmt_vec(rs.true_gradient) in text
    assert "1 − β₁ᵗ = 0.1" in text and "1 − β₂ᵗ = 0.001" in text
    # first Adam step: m̂ = g, v̂ = g², so the per-axis step is lr in each axis
    np.testing.assert_allclose(np.abs(ex.delta), 0.05, rtol=1e-6)
    boxes = [b for s in ex.stages for b in s.boxes]
    np.testing.assert_allclose(boxes[0].half, 0.05, rtol=1e-6)


def test_fmt_is_readable():
    assert fmt(0.28123456) == "0.2812"
    assert fmt(-0.000012345) == "-1.234e-05"
    assert fmt(0.0) == "0" and fmt(float("nan")) == "nan"
    assert fmt_vec([1.2, 0.4]) == "(1.2, 0.4)"


def test_bad_inputs_are_refused_clearly():
    sim = _simulation("adam", {"lr": 0.05})
    rs = sim.run_state(1)
    with pytest.raises(ValueError, match="AdamState"):
        explain("sgd", {}, rs.state, rs.position, rs.gradient)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        explain("adamz", {}, rs.state, rs.position, rs.gradient)
    with pytest.raises(ValueError, match="Hessian"):
        explain("newton", {}, optimizers.create("newton").init(np.zeros((1, 2))), [0, 0], [1, 1])
    with pytest.raises(IndexError):
        sim.run_state(5)


def test_a_stopped_run_has_no_state_to_explain():
    surface = surfaces.get("bowl")
    sim = Simulation(surface, [RunSpec("a", "sgd", {"lr": 5.0}, (1.0, 1.0))])
    sim.step(50)
    rs = sim.run_state(0)
    assert rs.status is Status.DIVERGED and rs.state is None


# ------------------------------------------------------------------------------ internals
def _state_after(name, hyper, grads):
    opt = optimizers.create(name, **hyper)
    theta = np.zeros((1, 2))
    state = opt.init(theta)
    for g in grads:
        _, state = opt.update(np.array([g], dtype=float), state, theta)
    return state


GRADS = [(3.0, -0.1), (2.0, 0.2), (-1.0, 0.05)]


def test_internals_adagrad_by_hand():
    state = _state_after("adagrad", {"lr": 0.1}, GRADS)
    s = np.sum(np.square(GRADS), axis=0)
    got = internals("adagrad", {"lr": 0.1}, state, grad=[1.0, 1.0])
    np.testing.assert_allclose(got.accumulator, s, rtol=1e-15)
    np.testing.assert_allclose(got.effective_lr, 0.1 / (np.sqrt(s) + 1e-10), rtol=1e-15)
    # the axis with the big gradients gets the small learning rate
    assert got.effective_lr[0] < got.effective_lr[1]


def test_internals_rmsprop_by_hand():
    state = _state_after("rmsprop", {"lr": 0.01, "alpha": 0.9}, GRADS)
    v = np.zeros(2)
    for g in GRADS:
        v = 0.9 * v + 0.1 * np.square(g)
    got = internals("rmsprop", {"lr": 0.01, "alpha": 0.9}, state, grad=[2.0, 2.0])
    np.testing.assert_allclose(got.accumulator, v, rtol=1e-14)
    np.testing.assert_allclose(got.effective_lr, 0.01 / (np.sqrt(v) + 1e-8), rtol=1e-14)
    np.testing.assert_allclose(got.step_size, 2.0 * got.effective_lr, rtol=1e-15)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_internals_adam_by_hand_with_bias_correction(amsgrad):
    hyper = {"lr": 0.05, "betas": (0.8, 0.95), "amsgrad": amsgrad}
    state = _state_after("adam", hyper, GRADS)
    m = v = vmax = np.zeros(2)
    for g in GRADS:
        m = 0.8 * m + 0.2 * np.array(g)
        v = 0.95 * v + 0.05 * np.square(g)
        vmax = np.maximum(vmax, v)
    t = len(GRADS)
    v_hat = (vmax if amsgrad else v) / (1 - 0.95**t)
    m_hat = m / (1 - 0.8**t)
    got = internals("adam", hyper, state)
    np.testing.assert_allclose(got.accumulator, v_hat, rtol=1e-13)
    np.testing.assert_allclose(got.moment, m_hat, rtol=1e-13)
    np.testing.assert_allclose(got.effective_lr, 0.05 / (np.sqrt(v_hat) + 1e-8), rtol=1e-13)
    np.testing.assert_allclose(got.step_size, np.abs(got.effective_lr * m_hat), rtol=1e-15)


def test_internals_is_none_where_there_is_no_accumulator():
    for name in ("sgd", "newton", "lion"):
        state = optimizers.create(name).init(np.zeros((1, 2)))
        assert internals(name, {}, state) is None
    fresh = optimizers.create("adam").init(np.zeros((1, 2)))
    assert internals("adam", {}, fresh) is None  # nothing accumulated before the first step
    for name in ("adadelta", "adamw", "nadam", "radam", "adamax"):
        got = internals(name, {}, _state_after(name, {}, GRADS), grad=[1.0, 1.0])
        assert got is not None and np.isfinite(got.effective_lr).all()
        assert (got.effective_lr > 0).all() and math.isfinite(got.step_size.sum())


def test_explained_after_live_edits():
    """Momentum switched on mid-run (torch would have no buffer; the engine keeps a zero one),
    dampening added, a new optimizer and a schedule from its restart: still the engine's step."""
    sim = _simulation("sgd", {"lr": 0.02})
    sim.step(3)
    sim.set_params(1, {"lr": 0.02, "momentum": 0.9, "dampening": 0.5})
    _check_against_engine(sim, 1)
    _check_against_engine(sim, 1)
    sim.set_optimizer(1, "rmsprop", {"lr": 0.01, "centered": True})
    sim.set_schedule(1, {"name": "step", "step_size": 1, "gamma": 0.5})
    sim.step(2)
    _check_against_engine(sim, 1)


@pytest.mark.parametrize(
    "name, hyper", [("sgd", {"lr": 0.5, "momentum": 0.9}), ("adam", {"lr": 0.05})]
)
@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_a_mini_batch_step_is_explained_exactly(name, hyper, noise):
    """On a surface with data the next step descends a mini-batch's loss: run_state hands the
    explainer that batch's gradient, and the explained landing point is the engine's, bit for
    bit, step after step (through an epoch boundary: 64 points in batches of 8)."""
    surface = surfaces.get("nn-logistic")
    runs = [
        RunSpec("batch", name, dict(hyper), (0.5, 0.5), noise=noise, batch_size=8),
        RunSpec("sibling", name, dict(hyper), (-0.5, 0.2), noise=noise, batch_size=8),
        RunSpec("full", name, dict(hyper), (1.0, -0.5), noise=noise),
    ]
    sim = Simulation(surface, runs, seed=5)
    for _ in range(10):
        rs = sim.run_state(0)
        assert rs.batch is not None and len(rs.batch) == 8
        np.testing.assert_array_equal(rs.batch, sim.frame().batches[0])
        expected = surface.batch_gradient(rs.position[None], rs.batch)[0]
        np.testing.assert_allclose(rs.batch_gradient, expected, rtol=1e-12)
        assert not np.allclose(rs.batch_gradient, rs.true_gradient)  # a batch is not the data
        ex = explain_run(rs, surface.data.m)
        assert "mini-batch gradient over 8 of the 64 data points" in ex.stages[0].caption
        assert fmt_vec(rs.batch_gradient) in ex.stages[0].caption
        sim.step(1)
        np.testing.assert_array_equal(sim.history(0).positions[-1], ex.new_position)
    full = sim.run_state(2)
    assert full.batch is None and full.batch_gradient is None
    np.testing.assert_array_equal(full.gradient, full.true_gradient + full.noise)
