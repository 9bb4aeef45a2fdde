"""The simulation: many balls stepped together give exactly what one ball stepped alone gives.

Most tests compare against a straight optimizer loop (create, init, update, theta + delta), the
simplest possible reference, bit for bit. The surfaces here are small analytic ones written in
the test, so a failure points at the simulation, not at the surface catalogue.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from gdsim.engine import optimizers, schedules
from gdsim.engine.simulation import (
    Frame,
    RunSpec,
    Simulation,
    Status,
    StopRules,
)


@dataclass(frozen=True)
class Fn:
    """A minimal surface: what Simulation needs (value, gradient, hessian, box)."""

    name: str
    value: object
    gradient: object
    hessian: object
    box: tuple = ((-2.0, 2.0), (-2.0, 2.0))
    title: str = "test"
    formula: str = ""
    params: dict = field(default_factory=dict)
    starts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def _bowl_h(p):
    return np.broadcast_to(2.0 * np.eye(2), (len(p), 2, 2)).copy()


BOWL = Fn("bowl", lambda p: (p * p).sum(axis=1), lambda p: 2.0 * p, _bowl_h)


def _rosen_value(p):
    x, y = p[:, 0], p[:, 1]
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def _rosen_grad(p):
    x, y = p[:, 0], p[:, 1]
    return np.stack([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)], axis=1)


def _rosen_hess(p):
    x, y = p[:, 0], p[:, 1]
    h = np.empty((len(p), 2, 2))
    h[:, 0, 0] = 2 - 400 * (y - 3 * x * x)
    h[:, 0, 1] = h[:, 1, 0] = -400 * x
    h[:, 1, 1] = 200.0
    return h


ROSEN = Fn("rosenbrock", _rosen_value, _rosen_grad, _rosen_hess, ((-2.0, 2.0), (-1.0, 3.0)))

START = (-1.5, 2.0)

MIX = [
    RunSpec("gd", "sgd", {"lr": 1e-3}, START),
    RunSpec("heavy ball", "sgd", {"lr": 1e-3, "momentum": 0.9}, START),
    RunSpec("nesterov", "sgd", {"lr": 5e-4, "momentum": 0.8, "nesterov": True}, (0.0, 2.0)),
    RunSpec("adam", "adam", {"lr": 0.02}, START),
    RunSpec("amsgrad", "adam", {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True}, START),
    RunSpec("rmsprop", "rmsprop", {"lr": 1e-3, "centered": True}, (1.5, -0.5)),
    RunSpec("newton", "newton", {"lr": 0.5, "damping": 1.0}, START),
    RunSpec("noisy", "sgd", {"lr": 1e-3}, (0.5, 0.5), noise=0.3),
    RunSpec("scheduled", "adam", {"lr": 0.05}, START, {"name": "step", "step_size": 40,
                                                        "gamma": 0.5}),
]  # fmt: skip


def straight_loop(surface, spec: RunSpec, steps: int, lr_at=None):
    """The reference: one ball, one optimizer, a plain Python loop. Returns positions (k+1, 2)."""
    opt = optimizers.create(spec.optimizer, **spec.params)
    theta = np.array([spec.start], dtype=float)
    state = opt.init(theta)
    out = [theta[0].copy()]
    for k in range(steps):
        kw = {}
        if lr_at is not None:
            kw["lr"] = lr_at(k)
        if opt.info.needs_hessian:
            kw["hessian"] = surface.hessian(theta)
        delta, state = opt.update(surface.gradient(theta), state, theta, **kw)
        theta = theta + delta
        out.append(theta[0].copy())
    return np.array(out), state, opt


def assert_same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert a.tobytes() == b.tobytes(), f"first difference at {np.argwhere(a != b)[:3].tolist()}"


# ------------------------------------------------------------------ agreement with one ball
@pytest.mark.parametrize("spec", [s for s in MIX if s.noise == 0 and s.schedule is None], ids=str)
def test_each_run_in_a_mixed_simulation_equals_a_straight_loop(spec):
    sim = Simulation(ROSEN, MIX, seed=3)
    sim.step(300)
    i = [s.label for s in MIX].index(spec.label)
    expected, _, _ = straight_loop(ROSEN, spec, 300)
    h = sim.history(i)
    assert_same_bits(h.positions, expected)
    assert_same_bits(h.losses, ROSEN.value(expected))
    assert_same_bits(h.gradients, ROSEN.gradient(expected))


def test_a_scheduled_run_uses_the_schedule_lr_at_each_step():
    spec = MIX[-1]
    sched = schedules.create("step", step_size=40, gamma=0.5)
    sim = Simulation(ROSEN, [spec])
    sim.step(130)
    expected, _, _ = straight_loop(ROSEN, spec, 130, lr_at=lambda k: sched.lr_at(0.05, k))
    h = sim.history(0)
    assert_same_bits(h.positions, expected)
    # row k holds the lr the step from row k uses
    assert_same_bits(h.lrs, np.asarray(sched.lr_at(0.05, np.arange(131.0))))


def test_runs_alone_or_together_give_the_same_bits():
    together = Simulation(ROSEN, MIX, seed=7)
    together.step(250)
    for i, spec in enumerate(MIX):
        alone = Simulation(ROSEN, [spec], seed=7)
        alone.step(250)
        if spec.noise:
            continue  # its noise stream is keyed by its index; checked separately
        assert_same_bits(alone.history(0).positions, together.history(i).positions)


# ------------------------------------------------------------------ determinism
def _all_history(sim):
    return [tuple(a.tobytes() for a in sim.history(i)[:4]) for i in range(sim.n_runs)]


def test_same_scenario_and_seed_give_the_same_bits_and_another_seed_other_noise():
    a, b, c = (Simulation(ROSEN, MIX, seed=s) for s in (11, 11, 12))
    for sim in (a, b, c):
        sim.step(200)
    assert _all_history(a) == _all_history(b)
    noisy = [s.label for s in MIX].index("noisy")
    assert _all_history(a)[noisy] != _all_history(c)[noisy]
    quiet = [i for i, s in enumerate(MIX) if not s.noise]
    assert [_all_history(a)[i] for i in quiet] == [_all_history(c)[i] for i in quiet]


def test_batching_of_step_calls_does_not_change_anything():
    one = Simulation(ROSEN, MIX, seed=5)
    one.step(333)
    many = Simulation(ROSEN, MIX, seed=5)
    for n in (1, 2, 30, 0, 100, 200):
        many.step(n)
    assert _all_history(one) == _all_history(many)


def test_a_noisy_runs_stream_does_not_depend_on_other_runs():
    noisy = RunSpec("noisy", "adam", {"lr": 0.01}, (0.3, 0.3), noise=0.5)
    first = Simulation(BOWL, [noisy], seed=9)
    first.step(100)
    # same index (0), many more runs after it, some noisy, some in its group
    crowd = Simulation(
        BOWL,
        [
            noisy,
            RunSpec("b", "adam", {"lr": 0.02}, (1.0, 1.0), noise=1.0),
            RunSpec("c", "sgd", {"lr": 0.1}, (1.0, -1.0), noise=0.2),
        ],
        seed=9,
    )
    crowd.step(100)
    assert_same_bits(first.history(0).positions, crowd.history(0).positions)
    # the noise really is there
    quiet = Simulation(BOWL, [RunSpec("q", "adam", {"lr": 0.01}, (0.3, 0.3))], seed=9)
    quiet.step(100)
    assert not np.array_equal(quiet.history(0).positions, first.history(0).positions)


def test_a_run_added_later_replays_like_the_same_run_from_the_start():
    base = [RunSpec("a", "sgd", {"lr": 0.05, "momentum": 0.5}, (1.0, 1.0), noise=0.1)]
    late = RunSpec("late", "sgd", {"lr": 0.05}, (-1.0, 0.5), noise=0.2)
    sim = Simulation(BOWL, base, seed=2)
    sim.step(40)
    assert sim.add_run(late) == 1
    sim.step(60)
    ref = Simulation(BOWL, [*base, late], seed=2)
    ref.step(60)
    assert sim.steps_taken(0) == 100 and sim.steps_taken(1) == 60
    assert_same_bits(sim.history(1).positions, ref.history(1).positions)


def test_reset_replays_the_same_numbers_noise_included():
    sim = Simulation(ROSEN, MIX, seed=4)
    sim.step(120)
    before = _all_history(sim)
    sim.reset()
    assert all(sim.steps_taken(i) == 0 for i in range(sim.n_runs))
    sim.step(120)
    assert _all_history(sim) == before


# ------------------------------------------------------------------ divergence
def test_a_bowl_with_lr_1_5_diverges_at_the_right_step_and_the_others_go_on():
    # x_{k+1} = x_k - 1.5 * 2 x_k = -2 x_k: |x_k| = 2^k. The box is [-2, 2]^2 (diagonal 4√2), so
    # the bound is 2 + 1000·4√2 ≈ 5659: |x_12| = 4096 is inside, |x_13| = 8192 is not.
    sim = Simulation(
        BOWL,
        [
            RunSpec("ok", "sgd", {"lr": 0.1}, (1.0, 1.0)),
            RunSpec("too high", "sgd", {"lr": 1.5}, (1.0, 1.0)),
            RunSpec("also ok", "adam", {"lr": 0.1}, (1.0, -1.0)),
        ],
    )
    assert sim.step(50) == 50
    assert sim.status(1) is Status.DIVERGED
    assert sim.stopped_at(1) == 13
    assert sim.stop_reason(1) == "out of bounds"
    h = sim.history(1)
    assert len(h.losses) == 13  # rows 0..12, the last finite ones
    assert_same_bits(h.positions[:, 0], (-2.0) ** np.arange(13))
    assert all(np.isfinite(a).all() for a in h[:4])
    for i in (0, 2):
        assert sim.status(i) is Status.RUNNING
        assert sim.steps_taken(i) == 50
    expected, _, _ = straight_loop(BOWL, sim.runs[0], 50)
    assert_same_bits(sim.history(0).positions, expected)
    f = sim.frame()
    assert f.status[1] is Status.DIVERGED and f.stopped_at[1] == 13 and f.step[1] == 12
    assert_same_bits(f.positions[1], h.positions[-1])
    assert f.reasons[1] == "out of bounds"


def test_a_diverged_run_stays_put_while_the_rest_keep_stepping():
    sim = Simulation(
        BOWL,
        [RunSpec("x", "sgd", {"lr": 1.5}, (1.0, 1.0)), RunSpec("y", "sgd", {"lr": 0.1}, (1, 1))],
    )
    sim.step(20)
    sim.step(30)
    assert sim.steps_taken(0) == 12 and sim.steps_taken(1) == 50
    assert sim.step(5) == 5


def test_non_finite_values_stop_a_run_at_the_last_finite_row():
    # f = sqrt(x): sgd walks left until x < 0, where f is NaN.
    sqrt = Fn(
        "sqrt",
        lambda p: np.sqrt(p[:, 0]) + p[:, 1] ** 2,
        lambda p: np.stack([0.5 / np.sqrt(p[:, 0]), 2 * p[:, 1]], axis=1),
        lambda p: np.zeros((len(p), 2, 2)),
        ((0.0, 5.0), (-1.0, 1.0)),
    )
    spec = RunSpec("s", "sgd", {"lr": 1.0}, (4.0, 0.0))
    with np.errstate(all="ignore"):
        expected, _, _ = straight_loop(sqrt, spec, 40)
        bad = ~np.isfinite(sqrt.value(expected)) | ~np.isfinite(sqrt.gradient(expected)).all(1)
    k = int(np.argmax(bad))
    assert 0 < k < 40
    sim = Simulation(sqrt, [spec])
    sim.step(40)
    assert sim.status(0) is Status.DIVERGED and sim.stopped_at(0) == k
    assert sim.stop_reason(0) == "non-finite"
    assert_same_bits(sim.history(0).positions, expected[:k])


def test_a_huge_loss_counts_as_divergence():
    # f = -1e98·x, gradient (-1e98, 0): with lr 1e-98 x grows by 1 a step; |f| > 1e100 past x = 100.
    ramp = Fn(
        "ramp",
        lambda p: -1e98 * p[:, 0],
        lambda p: np.stack([np.full(len(p), -1e98), np.zeros(len(p))], axis=1),
        lambda p: np.zeros((len(p), 2, 2)),
        ((-200.0, 200.0), (-1.0, 1.0)),
    )
    sim = Simulation(ramp, [RunSpec("r", "sgd", {"lr": 1e-98}, (0.0, 0.0))])
    sim.step(500)
    assert sim.status(0) is Status.DIVERGED
    assert sim.stop_reason(0) == "loss too large"
    h = sim.history(0)
    assert np.abs(h.losses).max() <= 1e100
    assert sim.stopped_at(0) == len(h.losses)
    assert 95 <= sim.stopped_at(0) <= 105


def test_a_start_where_the_surface_is_not_finite_is_refused():
    log = Fn(
        "log",
        lambda p: np.log(p[:, 0]),
        lambda p: np.stack([1 / p[:, 0], 0 * p[:, 1]], axis=1),
        lambda p: np.zeros((len(p), 2, 2)),
    )
    with pytest.raises(ValueError, match="not finite at the start"):
        Simulation(log, [RunSpec("l", "sgd", {"lr": 0.1}, (-1.0, 0.0))])


# ------------------------------------------------------------------ stop rules
def _bowl_sequence(lr, start, steps):
    x = np.array(start, dtype=float)[None]
    out = [x[0]]
    for _ in range(steps):
        x = x + np.multiply(2.0 * x, -lr)
        out.append(x[0])
    return np.array(out)


def test_grad_tol_marks_converged_at_the_first_step_below_it():
    sim = Simulation(
        BOWL, [RunSpec("g", "sgd", {"lr": 0.1}, (1.0, 1.0))], stop=StopRules(grad_tol=1e-3)
    )
    assert sim.step(1000) < 1000
    seq = _bowl_sequence(0.1, (1.0, 1.0), 100)
    norms = np.hypot(*(2 * seq).T)
    k = int(np.argmax(norms <= 1e-3))
    assert sim.status(0) is Status.CONVERGED and sim.stopped_at(0) == k
    assert sim.stop_reason(0) == "grad_tol"
    assert len(sim.history(0).losses) == k + 1
    assert sim.step(10) == 0  # nothing left to step


def test_loss_tol_and_max_steps():
    specs = [
        RunSpec("a", "sgd", {"lr": 0.1}, (1.0, 1.0)),
        RunSpec("b", "sgd", {"lr": 0.001}, (1, 1)),
    ]
    sim = Simulation(BOWL, specs, stop=StopRules(loss_tol=1e-6, max_steps=300))
    sim.step(1000)
    seq = _bowl_sequence(0.1, (1.0, 1.0), 300)
    f = (seq * seq).sum(1)
    k = int(np.argmax(np.abs(np.diff(f)) <= 1e-6)) + 1
    assert (sim.status(0), sim.stopped_at(0), sim.stop_reason(0)) == (
        Status.CONVERGED,
        k,
        "loss_tol",
    )
    assert (sim.status(1), sim.stopped_at(1), sim.stop_reason(1)) == (
        Status.CONVERGED,
        300,
        "max_steps",
    )
    assert sim.steps_taken(1) == 300


def test_a_run_starting_at_the_minimum_is_converged_at_step_0():
    sim = Simulation(BOWL, [RunSpec("z", "adam", {}, (0.0, 0.0))], stop=StopRules(grad_tol=1e-9))
    assert sim.status(0) is Status.CONVERGED and sim.stopped_at(0) == 0
    assert sim.step(5) == 0


def test_tightened_stop_rules_stop_runs_where_they_are():
    specs = [
        RunSpec("a", "sgd", {"lr": 0.1}, (1.0, 1.0)),
        RunSpec("b", "sgd", {"lr": 0.01}, (1, 1)),
    ]
    sim = Simulation(BOWL, specs)
    sim.step(100)
    g = np.hypot(*sim.frame().gradients.T)
    assert g[0] < 1e-6 < g[1]
    sim.set_stop(StopRules(grad_tol=1e-6))
    assert (sim.status(0), sim.stopped_at(0), sim.stop_reason(0)) == (
        Status.CONVERGED,
        100,
        "grad_tol",
    )
    assert sim.status(1) is Status.RUNNING
    sim.set_stop(StopRules(max_steps=50))
    assert (sim.status(1), sim.stopped_at(1), sim.stop_reason(1)) == (
        Status.CONVERGED,
        100,
        "max_steps",
    )
    assert sim.step(10) == 0
    sim.set_stop(None)
    sim.reset()
    assert sim.step(10) == 10


def test_a_simulation_without_runs_steps_nothing():
    sim = Simulation(BOWL, [])
    assert sim.step(100) == 0
    f = sim.frame()
    assert f.positions.shape == (0, 2) and f.status == ()


def test_bad_stop_rules_and_seeds_are_refused():
    with pytest.raises(ValueError, match="max_steps"):
        Simulation(BOWL, [], stop=StopRules(max_steps=0))
    with pytest.raises(ValueError, match="grad_tol"):
        Simulation(BOWL, [], stop=StopRules(grad_tol=-1.0))
    with pytest.raises(ValueError, match="seed"):
        Simulation(BOWL, [], seed=-1)


# ------------------------------------------------------------------ live edits
def test_set_params_keeps_position_and_state_like_a_straight_loop():
    spec = RunSpec("hb", "sgd", {"lr": 1e-3, "momentum": 0.9}, START)
    other = RunSpec("other", "sgd", {"lr": 2e-3}, (0.0, 0.0))
    sim = Simulation(ROSEN, [other, spec])
    sim.step(50)
    sim.set_params(1, {"lr": 5e-4, "momentum": 0.95})
    sim.step(70)

    pos, state, _ = straight_loop(ROSEN, spec, 50)
    new = optimizers.create("sgd", lr=5e-4, momentum=0.95)
    theta = pos[-1:].copy()
    rows = [*pos]
    for _ in range(70):
        delta, state = new.update(ROSEN.gradient(theta), state, theta)
        theta = theta + delta
        rows.append(theta[0].copy())
    assert_same_bits(sim.history(1).positions, np.array(rows))
    assert sim.runs[1].params == {"lr": 5e-4, "momentum": 0.95}
    # row k holds the lr of the step from row k: row 50's step already used the new one
    assert sim.history(1).lrs[49] == 1e-3 and sim.history(1).lrs[50] == 5e-4
    # the momentum buffer is the readout
    assert_same_bits(sim.frame().velocities[1], state.momentum_buffer[0])
    # the other run never noticed
    expected, _, _ = straight_loop(ROSEN, other, 120)
    assert_same_bits(sim.history(0).positions, expected)


def test_invalid_params_are_refused_and_change_nothing():
    sim = Simulation(BOWL, [RunSpec("a", "adam", {"lr": 0.1}, (1.0, 1.0))])
    sim.step(5)
    with pytest.raises(ValueError, match="lr"):
        sim.set_params(0, {"lr": -1.0})
    with pytest.raises(ValueError, match="nope"):
        sim.set_params(0, {"nope": 1.0})
    sim.step(5)
    ref = Simulation(BOWL, [RunSpec("a", "adam", {"lr": 0.1}, (1.0, 1.0))])
    ref.step(10)
    assert _all_history(sim) == _all_history(ref)


def test_set_optimizer_restarts_state_and_regroups():
    specs = [
        RunSpec("a", "sgd", {"lr": 1e-3, "momentum": 0.9}, START),
        RunSpec("b", "sgd", {"lr": 1e-3}, (0.5, 0.5)),
        RunSpec("c", "adam", {"lr": 0.01}, (1.5, 1.5)),
    ]
    sim = Simulation(ROSEN, specs)
    sim.step(30)
    sim.set_optimizer(0, "adam", {"lr": 0.02})
    sim.step(40)
    assert sim.runs[0].optimizer == "adam"

    pos, _, _ = straight_loop(ROSEN, specs[0], 30)
    after, _, _ = straight_loop(ROSEN, RunSpec("a", "adam", {"lr": 0.02}, tuple(pos[-1])), 40)
    assert_same_bits(sim.history(0).positions, np.concatenate([pos, after[1:]]))
    for i in (1, 2):
        expected, _, _ = straight_loop(ROSEN, specs[i], 70)
        assert_same_bits(sim.history(i).positions, expected)


def test_set_schedule_and_noise_take_effect_from_the_next_step():
    sim = Simulation(BOWL, [RunSpec("a", "sgd", {"lr": 0.1}, (1.0, 1.0))], seed=1)
    sim.step(3)
    sim.set_schedule(0, {"name": "exponential", "gamma": 0.5})
    assert sim.frame().lrs[0] == 0.1 * 0.5**3
    sim.step(2)
    assert list(sim.history(0).lrs) == [0.1, 0.1, 0.1, 0.1 * 0.5**3, 0.1 * 0.5**4, 0.1 * 0.5**5]
    with pytest.raises(ValueError):
        sim.set_schedule(0, {"name": "sometimes"})
    with pytest.raises(ValueError, match="noise"):
        sim.set_noise(0, -1.0)
    sim.set_noise(0, 0.5)
    assert sim.runs[0].noise == 0.5


def test_set_start_add_remove_and_set_surface():
    sim = Simulation(BOWL, [RunSpec("a", "sgd", {"lr": 0.1}, (1.0, 1.0))])
    sim.step(10)
    sim.set_start(0, (0.5, -0.5))
    assert sim.steps_taken(0) == 0
    assert tuple(sim.history(0).positions[0]) == (0.5, -0.5)
    i = sim.add_run(RunSpec("b", "adam", {"lr": 0.1}, (-1.0, 1.0)))
    sim.step(5)
    sim.remove_run(0)
    assert sim.n_runs == 1 and sim.runs[0].label == "b" and sim.steps_taken(0) == 5
    assert i == 1
    sim.set_surface(ROSEN)
    assert sim.surface is ROSEN and sim.steps_taken(0) == 0
    sim.step(20)
    expected, _, _ = straight_loop(ROSEN, RunSpec("b", "adam", {"lr": 0.1}, (-1.0, 1.0)), 20)
    assert_same_bits(sim.history(0).positions, expected)
    with pytest.raises(IndexError):
        sim.remove_run(3)


def test_reset_run_brings_back_a_diverged_run():
    sim = Simulation(BOWL, [RunSpec("a", "sgd", {"lr": 1.5}, (1.0, 1.0))])
    sim.step(30)
    assert sim.status(0) is Status.DIVERGED
    sim.set_params(0, {"lr": 0.1})
    sim.reset_run(0)
    assert sim.status(0) is Status.RUNNING and sim.stopped_at(0) == -1
    sim.step(10)
    assert sim.steps_taken(0) == 10


# ------------------------------------------------------------------ reading
def test_history_since_returns_only_the_new_rows_read_only():
    sim = Simulation(ROSEN, MIX[:3])
    sim.step(100)  # past the initial capacity: histories have grown
    full = sim.history(1)
    part = sim.history_since(1, 60)
    assert part.first == 60 and len(part.losses) == 41
    assert_same_bits(part.positions, full.positions[60:])
    assert_same_bits(part.lrs, full.lrs[60:])
    assert len(sim.history_since(1, 500).losses) == 0
    with pytest.raises(ValueError):
        part.positions[0, 0] = 1.0


def test_frame_is_an_immutable_snapshot():
    sim = Simulation(ROSEN, MIX, seed=1)
    sim.step(10)
    f = sim.frame()
    assert isinstance(f, Frame)
    kept = f.positions.copy()
    sim.step(10)
    assert_same_bits(f.positions, kept)
    for a in (f.step, f.positions, f.losses, f.gradients, f.lrs, f.deltas, f.stopped_at):
        assert not a.flags.writeable
    assert f.step.tolist() == [10] * len(MIX)
    assert f.status == (Status.RUNNING,) * len(MIX)


def test_frame_velocities_and_deltas():
    specs = [
        RunSpec("gd", "sgd", {"lr": 1e-3}, START),
        RunSpec("hb", "sgd", {"lr": 1e-3, "momentum": 0.9}, START),
        RunSpec("adam", "adam", {"lr": 0.01}, START),
    ]
    sim = Simulation(ROSEN, specs)
    sim.step(25)
    f = sim.frame()
    assert f.velocities[0].tolist() == [0.0, 0.0]
    for i, name in ((1, "momentum_buffer"), (2, "exp_avg")):
        pos, state, opt = straight_loop(ROSEN, specs[i], 25)
        assert_same_bits(f.velocities[i], getattr(state, name)[0])
        # the last delta is the optimizer's own, not a difference of positions
        theta = pos[-2:-1]
        _, state24, _ = straight_loop(ROSEN, specs[i], 24)
        delta, _ = opt.update(ROSEN.gradient(theta), state24, theta)
        assert_same_bits(f.deltas[i], delta[0])


def test_newton_gets_the_hessian():
    sim = Simulation(BOWL, [RunSpec("n", "newton", {"lr": 1.0}, (1.5, -0.7))])
    sim.step(1)
    assert sim.history(0).positions[1].tolist() == [0.0, 0.0]


def test_a_failing_step_keeps_nothing_of_its_chunk():
    calls = {"n": 0}

    def flaky(p):
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("surface broke")
        return 2.0 * p

    flaky_bowl = Fn("flaky", BOWL.value, flaky, _bowl_h)
    specs = [RunSpec("a", "sgd", {"lr": 0.1, "momentum": 0.5}, (1.0, 1.0))]
    sim = Simulation(flaky_bowl, specs)  # gradient call 1 (the start)
    sim.step(2)  # calls 2, 3
    with pytest.raises(RuntimeError):
        sim.step(10)  # fails at call 7, mid-chunk
    assert sim.steps_taken(0) == 2
    sim.step(8)
    ref = Simulation(BOWL, specs)
    ref.step(10)
    assert _all_history(sim) == _all_history(ref)


def test_a_simulation_can_be_deep_copied_for_a_snapshot():
    sim = Simulation(ROSEN, MIX, seed=8)
    sim.step(20)
    snap = copy.deepcopy(sim)
    sim.step(20)
    assert snap.steps_taken(0) == 20
    snap.step(20)
    assert _all_history(snap) == _all_history(sim)


def test_specs_are_copied_in_and_out():
    spec = RunSpec("a", "sgd", {"lr": 0.1}, (1.0, 1.0))
    sim = Simulation(BOWL, [spec])
    spec.params["lr"] = 99.0
    out = sim.runs[0]
    out.params["lr"] = 42.0
    assert sim.runs[0].params == {"lr": 0.1}
    assert math.isclose(sim.frame().lrs[0], 0.1)


def test_unknown_optimizer_and_bad_start_are_refused():
    with pytest.raises(ValueError, match="adamm"):
        Simulation(BOWL, [RunSpec("a", "adamm", {}, (0.0, 0.0))])
    with pytest.raises(ValueError, match="start"):
        Simulation(BOWL, [RunSpec("a", "sgd", {}, (math.nan, 0.0))])
    with pytest.raises(ValueError, match="n must be"):
        Simulation(BOWL, []).step(-1)
