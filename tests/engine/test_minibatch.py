"""Real mini-batches in the simulation: sampled like DataLoader(shuffle=True), seeded per run."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from gdsim.engine import surfaces
from gdsim.engine.simulation import RunSpec, Simulation, Status, StopRules

LINEAR = surfaces.get("nn-linear")
TANH = surfaces.get("nn-tanh")
M = 64


def spec(k: int | None, lr: float = 0.05, opt: str = "sgd", **kw) -> RunSpec:
    return RunSpec(f"b{k}", opt, {"lr": lr}, (-1.0, 1.5), batch_size=k, **kw)


def trail(sim: Simulation, i: int) -> np.ndarray:
    return sim.history(i).positions


def test_reproducible_by_seed_and_different_for_another_seed() -> None:
    runs = [spec(8), spec(5, opt="adam"), spec(None)]
    a, b, c = (Simulation(LINEAR, runs, seed=s) for s in (3, 3, 4))
    for sim in (a, b, c):
        sim.step(400)
    for i in range(3):
        np.testing.assert_array_equal(trail(a, i), trail(b, i))
    assert not np.array_equal(trail(a, 0), trail(c, 0))
    np.testing.assert_array_equal(trail(a, 2), trail(c, 2))  # full batch: no randomness


@pytest.mark.parametrize("chunks", [[1] * 300, [7, 100, 3, 190], [299, 1], [2049, 2500]])
def test_independent_of_how_steps_are_chunked(chunks: list[int]) -> None:
    runs = [spec(8), spec(7, noise=0.3), spec(1, opt="rmsprop", lr=0.01)]
    whole = Simulation(TANH, runs, seed=9)
    whole.step(sum(chunks))
    pieces = Simulation(TANH, runs, seed=9)
    for n in chunks:
        pieces.step(n)
    for i in range(3):
        np.testing.assert_array_equal(trail(whole, i), trail(pieces, i))
    for x, y in zip(whole.frame().batches, pieces.frame().batches, strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_runs_batches_do_not_depend_on_the_other_runs() -> None:
    alone = Simulation(LINEAR, [spec(8)], seed=2)
    crowd = Simulation(LINEAR, [spec(8), spec(3, opt="adam"), spec(16, lr=0.01)], seed=2)
    alone.step(300)
    crowd.step(300)
    np.testing.assert_array_equal(trail(alone, 0), trail(crowd, 0))


@pytest.mark.parametrize("k", [1, 8, 10, 63])
def test_epochs_are_fresh_permutations_cut_into_consecutive_batches(k: int) -> None:
    sim = Simulation(LINEAR, [spec(k, lr=0.001)], seed=1)
    per_epoch = -(-M // k)
    seen = []
    for _ in range(3 * per_epoch):
        seen.append(sim.frame().batches[0].copy())
        sim.step(1)
    sizes = [len(b) for b in seen[:per_epoch]]
    assert sizes == [k] * (M // k) + ([M % k] if M % k else [])  # drop_last=False
    epochs = [np.concatenate(seen[e * per_epoch : (e + 1) * per_epoch]) for e in range(3)]
    for e in epochs:
        np.testing.assert_array_equal(np.sort(e), np.arange(M))  # every point once per epoch
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch


def test_each_step_descends_the_batch_shown_in_the_frame_before_it() -> None:
    lr = 0.05
    sim = Simulation(LINEAR, [spec(8, lr=lr)], seed=0)
    for _ in range(40):
        f = sim.frame()
        before, idx = f.positions[0].copy(), f.batches[0]
        sim.step(1)
        after = sim.frame().positions[0]
        expected = before - lr * LINEAR.batch_gradient(before, idx)
        np.testing.assert_allclose(after, expected, rtol=1e-15, atol=1e-15)
        assert not np.allclose(after, before - lr * LINEAR.gradient(before), rtol=1e-9)


def test_history_keeps_the_true_full_data_gradient_and_loss() -> None:
    sim = Simulation(LINEAR, [spec(4)], seed=0)
    sim.step(100)
    h = sim.history(0)
    np.testing.assert_array_equal(h.gradients, LINEAR.gradient(h.positions))
    np.testing.assert_allclose(h.losses, LINEAR.value(h.positions), rtol=1e-15)
    np.testing.assert_array_equal(sim.frame().gradients[0], LINEAR.gradient(h.positions[-1]))


def test_full_batch_none_or_at_least_m_is_the_exact_gradient() -> None:
    sims = [Simulation(LINEAR, [spec(k)], seed=5) for k in (None, M, 1000)]
    for sim in sims:
        sim.step(200)
        assert sim.frame().batches == (None,)
    for sim in sims[1:]:
        np.testing.assert_array_equal(trail(sims[0], 0), trail(sim, 0))


def test_batch_size_has_no_effect_on_a_surface_without_data() -> None:
    bowl = surfaces.get("bowl")
    plain = Simulation(bowl, [RunSpec("a", "sgd", {"lr": 0.1}, (1.0, 1.0), noise=0.2)], seed=1)
    batched = Simulation(
        bowl, [RunSpec("a", "sgd", {"lr": 0.1}, (1.0, 1.0), noise=0.2, batch_size=4)], seed=1
    )
    for sim in (plain, batched):
        sim.step(100)
    np.testing.assert_array_equal(trail(plain, 0), trail(batched, 0))
    assert batched.frame().batches == (None,)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8", 8.0])
def test_bad_batch_sizes_are_refused_with_a_clear_message(bad: object) -> None:
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1"):
        Simulation(LINEAR, [spec(bad)])  # type: ignore[arg-type]
    sim = Simulation(LINEAR, [spec(8)], seed=0)
    sim.step(3)
    before = (sim.frame().batches[0].copy(), sim.runs[0].batch_size)
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1"):
        sim.set_batch_size(0, bad)  # type: ignore[arg-type]
    np.testing.assert_array_equal(sim.frame().batches[0], before[0])
    assert sim.runs[0].batch_size == before[1]


def test_set_batch_size_live() -> None:
    # From the full batch at step 0: the same as having had the batches from the start.
    a = Simulation(LINEAR, [spec(None)], seed=4)
    a.set_batch_size(0, 8)
    b = Simulation(LINEAR, [spec(8)], seed=4)
    a.step(150)
    b.step(150)
    np.testing.assert_array_equal(trail(a, 0), trail(b, 0))
    assert a.runs[0].batch_size == 8
    # Mid-epoch a new size goes on at the same place of the same permutation.
    b.step(3)
    shown = b.frame().batches[0].copy()
    pos = b.frame().positions[0].copy()
    b.set_batch_size(0, 3)
    np.testing.assert_array_equal(b.frame().batches[0], shown[:3])
    np.testing.assert_array_equal(b.frame().positions[0], pos)  # the ball stays where it is
    b.set_batch_size(0, None)
    assert b.frame().batches == (None,)
    b.step(2000)
    np.testing.assert_allclose(b.frame().positions[0], LINEAR.minima[0], rtol=1e-9)


def test_reset_restarts_the_batch_stream() -> None:
    sim = Simulation(TANH, [spec(6)], seed=8)
    sim.step(77)
    first = trail(sim, 0)
    sim.reset()
    sim.step(77)
    np.testing.assert_array_equal(first, trail(sim, 0))


def test_a_stopped_run_shows_no_next_batch() -> None:
    sim = Simulation(LINEAR, [spec(8), spec(8)], seed=0, stop=StopRules(max_steps=10))
    sim.set_stop(StopRules(max_steps=10))
    sim.step(50)
    assert sim.statuses() == (Status.CONVERGED, Status.CONVERGED)
    assert sim.frame().batches == (None, None)


def test_a_copied_simulation_goes_on_exactly_like_the_original() -> None:
    sim = Simulation(LINEAR, [spec(5)], seed=3)
    sim.step(33)
    twin = copy.deepcopy(sim)
    sim.step(100)
    twin.step(100)
    np.testing.assert_array_equal(trail(sim, 0), trail(twin, 0))


def test_batch_arrays_in_a_frame_are_read_only_copies() -> None:
    sim = Simulation(LINEAR, [spec(8)], seed=0)
    b = sim.frame().batches[0]
    assert b.dtype.kind == "i" and not b.flags.writeable
    sim.step(1)
    assert not np.array_equal(sim.frame().batches[0], b)


# ------------------------------------------------------------------------------ sweeps
def test_a_sweep_cell_with_batches_is_the_simulation_run_bit_for_bit() -> None:
    from gdsim.engine.sweep import parse_axis, sweep

    x, y = parse_axis("lr=0.01:0.3:log:5"), parse_axis("momentum=0:0.9:3")
    start = (-1.0, 1.5)
    r = sweep(LINEAR, "sgd", {}, start, x, y, steps=150, noise=0.05, seed=4, stream=2, batch_size=6)
    assert r.diverged.any() and not r.diverged.all()
    for i in range(3):
        for j in range(5):
            params = {"lr": float(x.values[j]), "momentum": float(y.values[i])}
            filler = [spec(8), spec(None)]  # runs 0 and 1: the cell is run 2
            cell = RunSpec("cell", "sgd", params, start, noise=0.05, batch_size=6)
            sim = Simulation(LINEAR, [*filler, cell], seed=4)
            sim.step(150)
            f = sim.frame()
            assert r.diverged_at[i, j] == f.stopped_at[2]
            assert r.final_position[i, j].tobytes() == f.positions[2].tobytes()
            assert r.final_loss[i, j] == f.losses[2]


def test_a_sweep_with_batches_differs_from_the_full_batch_and_ignores_them_without_data():
    from gdsim.engine.sweep import parse_axis, sweep

    x, y = parse_axis("lr=0.01:0.1:3"), parse_axis("momentum=0:0.5:2")
    full = sweep(TANH, "sgd", {}, (-2.5, 0.5), x, y, steps=60)
    mini = sweep(TANH, "sgd", {}, (-2.5, 0.5), x, y, steps=60, batch_size=4)
    assert not np.array_equal(full.final_position, mini.final_position)
    bowl = surfaces.get("bowl")
    a = sweep(bowl, "sgd", {}, (1.0, 1.0), x, y, steps=60)
    b = sweep(bowl, "sgd", {}, (1.0, 1.0), x, y, steps=60, batch_size=4)
    assert a.final_position.tobytes() == b.final_position.tobytes()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        sweep(TANH, "sgd", {}, (-2.5, 0.5), x, y, steps=60, batch_size=0)
