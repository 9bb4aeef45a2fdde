"""Learning-rate schedules: torch agreement, closed forms, vectorisation, validation."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from gdsim.engine import schedules

HERE = Path(__file__).parent
GOLDEN = json.loads((HERE / "data" / "torch_golden.json").read_text())


def _load_generator():
    path = HERE / "make_torch_golden.py"
    spec = importlib.util.spec_from_file_location("make_torch_golden", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()


def _case_id(case):
    return f"{case['name']}-" + "-".join(f"{k}={v}" for k, v in case["hyper"].items())


@pytest.mark.parametrize("case", GOLDEN["schedules"], ids=_case_id)
def test_lr_matches_torch_lr_scheduler_golden(case):
    """Step k's lr is torch's get_last_lr() after k scheduler steps, past T_max too."""
    sched = schedules.create(case["name"], **case["hyper"])
    steps = np.arange(len(case["lrs"]))
    np.testing.assert_allclose(sched.lr_at(case["base_lr"], steps), case["lrs"], rtol=1e-12)


def test_golden_covers_every_schedule():
    assert {c["name"] for c in GOLDEN["schedules"]} == set(schedules.names())
    cosine = [c for c in GOLDEN["schedules"] if c["name"] == "cosine"]
    assert all(c["hyper"]["T_max"] * 2 < len(c["lrs"]) for c in cosine[:1])  # past 2·T_max


@pytest.mark.parametrize(
    "name, hyper, base_lr",
    GEN.SCHEDULE_CASES,
    ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(GEN.SCHEDULE_CASES)],
)
def test_lr_matches_torch_lr_scheduler_live(name, hyper, base_lr):
    pytest.importorskip("torch")
    sched = schedules.create(name, **hyper)
    ref = GEN.torch_schedule(name, hyper, base_lr)
    np.testing.assert_allclose(sched.lr_at(base_lr, np.arange(len(ref))), ref, rtol=1e-12)


def test_names_and_metadata():
    assert schedules.names() == ["constant", "step", "exponential", "cosine", "inverse_time"]
    for name, info in schedules.CATALOGUE.items():
        assert info.name == name and info.display_name and info.idea and info.rule
        sched = schedules.create(name)  # the defaults are valid
        assert set(sched.hyper) == {p.name for p in info.params}
        for p in info.params:
            assert p.kind in {"float", "int"} and p.doc


def test_closed_forms():
    base = 0.2
    step = schedules.create("step", step_size=10, gamma=0.5)
    assert step.lr_at(base, 0) == base and step.lr_at(base, 9) == base
    assert step.lr_at(base, 10) == 0.1 and step.lr_at(base, 25) == 0.05
    exp = schedules.create("exponential", gamma=0.9)
    assert exp.lr_at(base, 0) == base
    assert math.isclose(exp.lr_at(base, 3), base * 0.9**3, rel_tol=1e-15)
    inv = schedules.create("inverse_time", decay_rate=0.25)
    assert inv.lr_at(base, 4) == 0.1  # halves at step 1/decay_rate
    const = schedules.create("constant")
    assert const.lr_at(base, 12345) == base


def test_cosine_reaches_eta_min_at_t_max_and_climbs_back_after():
    cos = schedules.create("cosine", T_max=50, eta_min=0.01)
    assert cos.lr_at(1.0, 0) == 1.0
    assert math.isclose(cos.lr_at(1.0, 25), 0.505, rel_tol=1e-15)
    assert math.isclose(cos.lr_at(1.0, 50), 0.01, rel_tol=1e-15)
    # periodic past T_max, as torch's recursive form: back to base at 2·T_max
    assert math.isclose(cos.lr_at(1.0, 75), 0.505, rel_tol=1e-14)
    assert math.isclose(cos.lr_at(1.0, 100), 1.0, rel_tol=1e-15)
    k = np.arange(0, 50)
    assert np.all(np.diff(cos.lr_at(1.0, k)) < 0)


@pytest.mark.parametrize("name", ["constant", "step", "exponential", "cosine", "inverse_time"])
def test_vectorised_over_steps_and_base_lrs(name):
    sched = schedules.create(name)
    steps = np.array([[0.0], [1.0], [99.0], [100.0], [731.0], [5000.0]])
    bases = np.array([[0.1], [0.01], [1.0], [0.5], [0.3], [2.0]])
    together = sched.lr_at(bases, steps)
    assert together.shape == (6, 1)
    for i in range(6):
        one = sched.lr_at(float(bases[i, 0]), float(steps[i, 0]))
        assert isinstance(one, float)
        assert one == together[i, 0]
    assert sched.lr_at(0.1, np.arange(4)).shape == (4,)


@pytest.mark.parametrize(
    "name, hyper, match",
    [
        ("step", {"gamma": 0.0}, r"gamma.*in \(0, 1\]"),
        ("step", {"gamma": 1.5}, r"gamma.*in \(0, 1\]"),
        ("step", {"step_size": 0}, r"step_size.*an integer >= 1"),
        ("step", {"step_size": 2.5}, r"step_size.*an integer >= 1"),
        ("exponential", {"gamma": -0.1}, r"gamma"),
        ("cosine", {"T_max": 0}, r"T_max.*>= 1"),
        ("cosine", {"eta_min": -1e-3}, r"eta_min.*>= 0"),
        ("inverse_time", {"decay_rate": -1.0}, r"decay_rate.*>= 0"),
        ("cosine", {"gamma": 0.5}, r"Unknown.*'gamma'.*valid ones are: T_max, eta_min"),
        ("constant", {"gamma": 0.5}, r"Unknown hyperparameter 'gamma'"),
    ],
)  # fmt: skip
def test_invalid_parameters_are_refused_with_name_and_range(name, hyper, match):
    with pytest.raises(ValueError, match=match):
        schedules.create(name, **hyper)


def test_unknown_schedule_and_bad_arguments():
    with pytest.raises(ValueError, match="Unknown schedule 'linear'; valid names are: constant"):
        schedules.create("linear")
    sched = schedules.create("step")
    with pytest.raises(ValueError, match="step"):
        sched.lr_at(0.1, -1)
    with pytest.raises(ValueError, match="base_lr must be >= 0"):
        sched.lr_at(np.array([0.1, -0.1]), 3)


def test_integer_valued_floats_are_accepted_as_counts():
    """A UI spin box may hand 100.0 for step_size; it means 100."""
    sched = schedules.create("step", step_size=100.0)
    assert sched.hyper["step_size"] == 100 and isinstance(sched.hyper["step_size"], int)
