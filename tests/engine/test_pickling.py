"""Surfaces and Simulations pickle by recipe, so the engine can run in another process.

Every kind of surface the app makes must come back computing the same numbers, and a pickled
Simulation must go on stepping exactly as the original does.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pytest

from gdsim.engine import surfaces
from gdsim.engine.simulation import RunSpec, Simulation, StopRules
from gdsim.engine.surfaces import Surface, SurfaceFunctions


def _points(surface: Surface) -> np.ndarray:
    (x0, x1), (y0, y1) = surface.box
    rng = np.random.default_rng(3)
    pts = np.column_stack([rng.uniform(x0, x1, 40), rng.uniform(y0, y1, 40)])
    # the catalogue's minima and starts too: closed forms differ from the formula at kinks
    return np.concatenate([pts, surface.minima, surface.starts])


def _assert_same(a: Surface, b: Surface) -> None:
    assert b is not a
    for name in ("name", "title", "story", "formula", "box", "log_scale", "params", "one_d"):
        assert getattr(b, name) == getattr(a, name), name
    for name in ("minima", "minima_values", "starts", "local_minima", "local_minima_values"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name))
        assert not getattr(b, name).flags.writeable
    pts = _points(a)
    np.testing.assert_array_equal(b.value(pts), a.value(pts))
    np.testing.assert_array_equal(b.gradient(pts), a.gradient(pts))
    np.testing.assert_array_equal(b.hessian(pts), a.hessian(pts))


CATALOGUE = [*surfaces.names(), "ravine-rotated", "nn-linear-offset", "nn-tanh-seed"]


def _make(key: str) -> Surface:
    if key == "ravine-rotated":
        return surfaces.get("ravine", kappa=40.0, angle=30.0)
    if key == "nn-linear-offset":
        return surfaces.get("nn-linear", seed=5, offset=0.0, spread=2.0)
    if key == "nn-tanh-seed":
        return surfaces.get("nn-tanh", seed=7)
    return surfaces.get(key)


@pytest.mark.parametrize("key", CATALOGUE)
def test_catalogue_surfaces_round_trip(key: str) -> None:
    a = _make(key)
    b = pickle.loads(pickle.dumps(a))
    _assert_same(a, b)
    if a.data is not None:
        assert b.data is not a.data and b.data.seed == a.data.seed
        np.testing.assert_array_equal(b.data.x, a.data.x)
        assert not b.data.x.flags.writeable
        idx = np.arange(0, a.data.m, 3)
        pts = _points(a)
        np.testing.assert_array_equal(b.batch_gradient(pts, idx), a.batch_gradient(pts, idx))


@pytest.mark.parametrize(
    "text",
    ["x^2 + 3*y^2 - x*y", "abs(x) + sin(y)*exp(-x^2)", "x^4 - 2*x^2", "log(1 + x^2) + y^2/7"],
)
def test_typed_formulas_round_trip(text: str) -> None:
    a = surfaces.from_formula(text, ((-2.0, 3.0), (-1.0, 1.5)), name="mine", minima=[(0, 0)])
    b = pickle.loads(pickle.dumps(a))
    _assert_same(a, b)
    assert b.one_d == surfaces.formula_is_one_d(text)


def test_a_formula_named_like_a_catalogue_surface_keeps_its_own_functions() -> None:
    # "ackley" with another formula must not come back with Ackley's closed form
    a = surfaces.from_formula("x^2 + y^2", name="ackley")
    b = pickle.loads(pickle.dumps(a))
    _assert_same(a, b)
    assert b.value(np.array([[1.0, 2.0]]))[0] == 5.0


def test_a_surface_with_foreign_functions_refuses_to_pickle() -> None:
    real = surfaces.get("bowl")
    fake = dataclasses.replace(
        real,
        functions=SurfaceFunctions(lambda p: p[..., 0] * 0, real.gradient, real.hessian),
    )
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(fake)
    assert copy.deepcopy(fake) is fake  # immutable: copying never needs the recipe


@pytest.mark.parametrize("name", ["himmelblau", "nn-logistic", "ackley"])
def test_simulation_round_trips_and_steps_bit_identically(name: str) -> None:
    surface = surfaces.get(name)
    specs = [
        RunSpec("a", "adam", {"lr": 0.05}, tuple(surface.starts[0]), noise=0.1),
        RunSpec("b", "sgd", {"lr": 0.01, "momentum": 0.9}, tuple(surface.starts[-1])),
    ]
    if surface.data is not None:
        specs.append(RunSpec("c", "rmsprop", {"lr": 0.01}, (0.5, 0.5), batch_size=8))
    sim = Simulation(surface, specs, seed=4, stop=StopRules(None, 0.0, None))
    sim.step(17)
    twin = pickle.loads(pickle.dumps(sim))
    assert twin.surface is not sim.surface and twin.surface.name == name
    sim.step(40)
    twin.step(40)
    for i in range(sim.n_runs):
        a, b = sim.history_since(i, 0), twin.history_since(i, 0)
        np.testing.assert_array_equal(b.positions, a.positions)
        np.testing.assert_array_equal(b.losses, a.losses)
    np.testing.assert_array_equal(twin.frame().positions, sim.frame().positions)


def test_scheduled_and_grouped_runs_round_trip() -> None:
    # two Adam runs with different lrs share one stacked optimizer; one has a schedule
    surface = surfaces.get("rosenbrock")
    specs = [
        RunSpec("a", "adam", {"lr": 0.05}, (-1.0, 1.0)),
        RunSpec("b", "adam", {"lr": 0.02, "amsgrad": True}, (1.5, 1.5)),
        RunSpec("c", "sgd", {"lr": 1e-3}, (0.0, 2.0), schedule={"name": "cosine", "T_max": 30}),
    ]
    sim = Simulation(surface, specs, seed=1)
    sim.step(12)
    twin = pickle.loads(pickle.dumps(sim))
    sim.step(25)
    twin.step(25)
    np.testing.assert_array_equal(twin.frame().positions, sim.frame().positions)
    np.testing.assert_array_equal(twin.frame().lrs, sim.frame().lrs)
