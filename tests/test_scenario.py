"""Scenario files: round trips, errors that name the field, and nothing but ScenarioError."""

from __future__ import annotations

import contextlib
import copy
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdsim.engine.simulation import RunSpec, Simulation, Status, StopRules
from gdsim.scenario import (
    FORMAT_VERSION,
    Scenario,
    ScenarioError,
    SurfaceSpec,
    shipped,
    shipped_path,
)

DOC = {
    "gdsim": 1,
    "title": "Three balls",
    "description": "A test scenario.",
    "surface": {"name": "rosenbrock"},
    "steps": 200,
    "seed": 3,
    "stop": {"grad_tol": 1e-8},
    "runs": [
        {"label": "GD", "optimizer": "sgd", "params": {"lr": 0.001}, "start": [-1.5, 2.0]},
        {
            "label": "Adam",
            "optimizer": "adam",
            "params": {"lr": 0.05, "betas": [0.9, 0.999]},
            "start": [-1.5, 2.0],
            "schedule": {"name": "step", "step_size": 100, "gamma": 0.5},
            "color": "#1f77b4",
        },
        {
            "label": "Noisy",
            "optimizer": "sgd",
            "params": {"lr": 0.001, "momentum": 0.9, "nesterov": True},
            "start": [0.0, 0.0],
            "noise": 0.1,
            "visible": False,
        },
    ],
}


def doc(**changes) -> dict:
    d = copy.deepcopy(DOC)
    d.update(changes)
    return d


def test_a_document_round_trips_through_the_model_and_a_file(tmp_path):
    s = Scenario.from_dict(DOC)
    assert s.to_dict() == DOC
    assert Scenario.from_dict(s.to_dict()) == s
    path = tmp_path / "s.json"
    s.save(path)
    assert Scenario.load(path) == s
    assert json.loads(path.read_text()) == DOC
    assert s.runs[1].params["betas"] == (0.9, 0.999)
    assert s.runs[2].visible is False and s.runs[1].color == "#1f77b4"
    assert s.stop == StopRules(grad_tol=1e-8)


def test_defaults_fill_in_and_stay_out_of_the_file():
    s = Scenario.from_dict(
        {"gdsim": 1, "surface": {"name": "bowl"}, "runs": [{"optimizer": "adam", "start": [1, 1]}]}
    )
    assert (s.steps, s.seed, s.stop, s.title) == (500, 0, None, "")
    assert s.runs[0] == RunSpec("Adam", "adam", {}, (1.0, 1.0))
    assert s.to_dict() == {
        "gdsim": 1,
        "surface": {"name": "bowl"},
        "steps": 500,
        "seed": 0,
        "runs": [{"label": "Adam", "optimizer": "adam", "params": {}, "start": [1.0, 1.0]}],
    }


def test_custom_formula_and_builtin_params_and_box():
    s = Scenario.from_dict(
        doc(surface={"formula": "x^2 + 10*y^2", "box": [[-3, 3], [-2, 2]], "title": "Mine"})
    )
    surface = s.build_surface()
    assert surface.box == ((-3.0, 3.0), (-2.0, 2.0))
    assert surface.value(np.array([[1.0, 1.0]]))[0] == 11.0
    s2 = Scenario.from_dict(
        doc(surface={"name": "ravine", "params": {"kappa": 10.0}, "box": [[-1, 1], [-1, 1]]})
    )
    r = s2.build_surface()
    assert r.box == ((-1.0, 1.0), (-1.0, 1.0))
    assert r.value(np.array([[0.0, 1.0]]))[0] == pytest.approx(5.0)
    assert Scenario.from_dict(s2.to_dict()) == s2


def test_to_simulation_gives_the_same_numbers_as_a_simulation_built_by_hand():
    s = Scenario.from_dict(DOC)
    sim = s.to_simulation()
    sim.step(50)
    ref = Simulation(s.build_surface(), s.runs, seed=3, stop=StopRules(grad_tol=1e-8))
    ref.step(50)
    for i in range(3):
        assert sim.history(i).positions.tobytes() == ref.history(i).positions.tobytes()


def test_editing_the_surface_spec_rebuilds_the_surface():
    s = Scenario.from_dict(DOC)
    first = s.build_surface()
    assert s.build_surface() is first
    s.surface = SurfaceSpec(name="bowl")
    assert s.build_surface().name == "bowl"


# ------------------------------------------------------------------ errors that name the field
def _set(path, value):
    def change(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


_DELETE = object()

ERRORS = [
    (_set(["runs", 2, "params", "lr"], -0.1), "runs[2].params.lr: must be >= 0, got -0.1"),
    (_set(["stpes"], 5), "stpes: unknown field (allowed: gdsim, title,"),
    (_set(["runs", 0, "parms"], {}), "runs[0].parms: unknown field (allowed: label, optimizer"),
    (_set(["runs", 0, "params", "momentun"], 0.9), "runs[0].params.momentun: unknown field"),
    (_set(["steps"], "500"), "steps: must be an integer, got a string"),
    (_set(["steps"], 2.5), "steps: must be an integer, got 2.5"),
    (_set(["steps"], 10**8), "steps: must be in [0, 10000000], got 100000000"),
    (_set(["seed"], True), "seed: must be an integer, got a boolean"),
    (_set(["surface", "name"], "rosenbrok"), "surface.name: unknown surface 'rosenbrok'; valid:"),
    (
        _set(["runs", 0, "optimizer"], "adamm"),
        "runs[0].optimizer: unknown optimizer 'adamm'; valid: sgd,",
    ),
    (
        _set(["runs", 1, "schedule", "name"], "sometimes"),
        "runs[1].schedule.name: unknown schedule 'sometimes'; valid: constant",
    ),
    (_set(["runs", 1, "schedule", "gamma"], 2), "runs[1].schedule.gamma: must be in (0, 1], got 2"),
    (_set(["runs", 1, "schedule", "name"], _DELETE), "runs[1].schedule.name: missing (required)"),
    (
        _set(["runs", 1, "params", "betas"], [0.9, 1.0]),
        "runs[1].params.betas[1]: must be in [0, 1), got 1.0",
    ),
    (
        _set(["runs", 1, "params", "betas"], 0.9),
        "runs[1].params.betas: must be a list of two numbers",
    ),
    (
        _set(["runs", 0, "params", "nesterov"], 1),
        "runs[0].params.nesterov: must be true or false, got a number",
    ),
    (_set(["runs", 0, "params", "momentum"], 0.0), None),
    (_set(["runs", 2, "params", "momentum"], 0.0), "runs[2].params: Nesterov momentum requires"),
    (
        _set(["runs", 0, "start"], [1]),
        "runs[0].start: must be a list of two numbers [x, y], got 1 items",
    ),
    (
        _set(["runs", 0, "start"], [1, math.nan]),
        "runs[0].start[1]: must be a finite number, got nan",
    ),
    (
        _set(["runs", 0, "start"], [1, 10**400]),
        "runs[0].start[1]: must be a finite number, got a number too large",
    ),
    (_set(["runs", 0, "start"], _DELETE), "runs[0].start: missing (required)"),
    (_set(["runs", 0, "noise"], -1), "runs[0].noise: must be >= 0, got -1"),
    (
        _set(["runs", 0, "color"], "red"),
        "runs[0].color: must be a colour like '#1f77b4', got 'red'",
    ),
    (_set(["runs", 0, "visible"], "yes"), "runs[0].visible: must be true or false, got a string"),
    (_set(["runs", 0, "label"], 3), "runs[0].label: must be a string, got a number"),
    (_set(["runs"], {}), "runs: must be a list, got an object"),
    (_set(["runs", 0], []), "runs[0]: must be an object, got a list"),
    (_set(["gdsim"], 2), "gdsim: format version 2 is not supported (written by a newer gdsim?)"),
    (_set(["gdsim"], "1"), "gdsim: must be the format version 1, got a string"),
    (_set(["gdsim"], _DELETE), "gdsim: missing (required)"),
    (
        _set(["surface"], {"name": "bowl", "formula": "x^2"}),
        "surface: give either a built-in 'name' or a custom 'formula', not both",
    ),
    (_set(["surface"], {}), "surface: give either a built-in 'name' or a custom 'formula'"),
    (_set(["surface"], {"formula": "x^^2"}), "surface.formula: "),
    (
        _set(["surface"], {"formula": "x^2", "params": {}}),
        "surface.params: only built-in surfaces take params",
    ),
    (
        _set(["surface", "box"], [[1, -1], [0, 1]]),
        "surface.box[0]: min must be less than max, got [1, -1]",
    ),
    (_set(["surface", "shape"], "round"), "surface.shape: unknown field (allowed: name, formula"),
    (_set(["stop", "grad_tol"], 0), "stop.grad_tol: must be > 0, got 0"),
    (_set(["stop", "max_steps"], 0), "stop.max_steps: must be in [1, 10000000], got 0"),
    (_set(["stop", "patience"], 3), "stop.patience: unknown field"),
    (_set(["title"], None), "title: must be a string, got null"),
]


@pytest.mark.parametrize(("change", "message"), ERRORS, ids=[m or "ok" for _, m in ERRORS])
def test_errors_name_the_field(change, message):
    d = copy.deepcopy(DOC)
    change(d)
    if message is None:
        Scenario.from_dict(d)
        return
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(d)
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.field == str(info.value).split(": ")[0]


def test_a_start_where_the_surface_is_not_finite_is_named():
    d = doc(surface={"formula": "log(x) + y^2"})
    d["runs"] = [{"optimizer": "sgd", "start": [-1, 0]}]
    with pytest.raises(ScenarioError, match=r"^runs\[0\]\.start: the surface .* not finite"):
        Scenario.from_dict(d)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(doc(surface={"name": "nope"}))
    assert "rosenbrock" in str(info.value) and "two-wells" in str(info.value)


def test_top_level_must_be_an_object():
    for value in ([], "x", 3, None):
        with pytest.raises(ScenarioError, match="must be an object"):
            Scenario.from_dict(value)


# ------------------------------------------------------------------ files
def test_broken_json_reports_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "gdsim": 1,\n  "surface": {"name": "bowl"},,\n}\n')
    with pytest.raises(ScenarioError) as info:
        Scenario.load(path)
    e = info.value
    assert (e.line, e.column) == (3, 31)
    assert str(e).startswith(f"{path}: line 3, column 31: not valid JSON")


def test_other_unreadable_files(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read the file"):
        Scenario.load(tmp_path / "missing.json")
    (tmp_path / "latin.json").write_bytes(b'{"title": "caf\xe9"}')
    with pytest.raises(ScenarioError, match="not UTF-8"):
        Scenario.load(tmp_path / "latin.json")
    (tmp_path / "dup.json").write_text('{"gdsim": 1, "gdsim": 1}')
    with pytest.raises(ScenarioError, match="'gdsim' appears twice"):
        Scenario.load(tmp_path / "dup.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ScenarioError, match="deep"):
        Scenario.load(tmp_path / "deep.json")
    (tmp_path / "nan.json").write_text(json.dumps(doc(seed=0)).replace('"seed": 0', '"seed": NaN'))
    with pytest.raises(ScenarioError, match="seed: must be a finite number"):
        Scenario.load(tmp_path / "nan.json")
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path)


def test_a_lone_surrogate_is_refused_not_saved_broken():
    text = json.dumps(doc(title="x")).replace('"title": "x"', '"title": "\\ud800"')
    with pytest.raises(ScenarioError, match="title: must be valid Unicode text"):
        Scenario.from_json(text)


def test_a_utf8_bom_is_accepted_and_invalid_content_names_the_file(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(DOC).encode())
    assert Scenario.load(path) == Scenario.from_dict(DOC)
    path.write_text(json.dumps(doc(steps=-1)))
    with pytest.raises(ScenarioError, match=r"bom\.json: steps: must be in \[0"):
        Scenario.load(path)


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    path.write_text("old")
    s = Scenario.from_dict(DOC)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="No space"):
        s.save(path)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


# ------------------------------------------------------------------ nothing but ScenarioError
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "gdsim", "surface", "runs", "steps", "seed", "stop", "title", "name", "formula", "params",
    "box", "label", "optimizer", "start", "schedule", "noise", "color", "visible", "lr",
    "momentum", "betas", "nesterov", "grad_tol", "step_size", "gamma", "kappa",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_value)
def test_arbitrary_json_never_raises_anything_but_scenario_error(value):
    with contextlib.suppress(ScenarioError):
        Scenario.from_dict(value)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield from _paths(v, (*prefix, k))


ALL_PATHS = list(_paths(DOC))[1:]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(ALL_PATHS),
            st.one_of(json_value, st.sampled_from(KEYS)),
            st.sampled_from(["replace", "delete", "add"]),
            st.sampled_from(KEYS),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_a_valid_scenario_with_random_damage_gives_a_scenario_or_a_scenario_error(edits):
    d = copy.deepcopy(DOC)
    for path, value, how, key in edits:
        parent = d
        try:
            for k in path[:-1]:
                parent = parent[k]
            if how == "replace":
                parent[path[-1]] = value
            elif how == "delete":
                del parent[path[-1]]
            elif isinstance(parent[path[-1]], dict):
                parent[path[-1]][key] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed this path
    try:
        s = Scenario.from_dict(d)
    except ScenarioError as e:
        assert e.reason
        return
    assert Scenario.from_dict(s.to_dict()) == s
    assert Scenario.from_json(s.to_json()) == s


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_a_scenario_error(text):
    with pytest.raises(ScenarioError):
        Scenario.from_json(text)


# ------------------------------------------------------------------ shipped scenarios
def test_the_shipped_scenarios_are_listed_default_first():
    found = shipped()
    assert found[0].name == "default"
    assert all(s.title and s.description for s in found)
    assert shipped_path("default") == found[0].path
    assert shipped_path("no-such-scenario") is None
    assert FORMAT_VERSION == 1


def _ran(name: str):
    s = Scenario.load(shipped_path(name))
    sim = s.to_simulation()
    sim.step(s.steps)
    return s, sim, sim.frame()


def _near(point, target, tol=1e-3) -> bool:
    return float(np.hypot(*(np.asarray(point) - np.asarray(target)))) < tol


def story_default(s, sim, f):
    surface = s.build_surface()
    shallow, deep = surface.local_minima[0], surface.minima[0]
    assert shallow[0] > 0 > deep[0]
    gd, momentum, adam = range(3)
    assert s.runs[gd].optimizer == "sgd" and "momentum" not in s.runs[gd].params
    assert s.runs[momentum].params["momentum"] > 0
    assert s.runs[adam].optimizer == "adam"
    assert _near(f.positions[gd], shallow) and _near(f.positions[adam], shallow)
    assert _near(f.positions[momentum], deep)
    assert (sim.history(momentum).positions[:, 0] < 0).any()  # it went over the ridge
    assert (sim.history(gd).positions[:, 0] > 0.12).all()  # GD never reached the ridge


def story_ravine_momentum(s, sim, f):
    y = sim.history(0).positions[:20, 1]
    assert (np.sign(y[1:]) != np.sign(y[:-1])).all()  # plain GD zig-zags across the valley
    assert f.losses[1] < 1e-6 * f.losses[0] and f.losses[2] < 1e-6 * f.losses[0]


def story_lr_too_high(s, sim, f):
    lrs = [r.params["lr"] for r in s.runs]
    assert lrs == [0.1, 0.45, 0.9, 1.0, 1.05]
    assert all(f.losses[i] < 1e-20 for i in range(3))
    x = sim.history(2).positions[:10, 0]
    assert (np.sign(x[1:]) != np.sign(x[:-1])).all()  # 0.9 overshoots every step
    bounce = sim.history(3).positions
    assert set(map(tuple, bounce.tolist())) == {(1.2, 0.8), (-1.2, -0.8)}
    assert sim.status(3) is Status.RUNNING
    assert sim.status(4) is Status.DIVERGED and np.isfinite(sim.history(4).positions).all()


def story_rosenbrock_adam_family(s, sim, f):
    by = {r.label: i for i, r in enumerate(s.runs)}
    assert f.losses[by["Adam"]] < 1e-3 and f.losses[by["NAdam"]] < 1e-3
    assert f.losses[by["AMSGrad"]] < 0.05 and f.losses[by["AdamW"]] < 0.05
    assert f.losses[by["Adamax"]] > 0.1
    assert np.hypot(*f.positions[by["AdamW"]]) < np.hypot(*f.positions[by["Adam"]])
    radam = by["RAdam"]
    assert sim.status(radam) is Status.DIVERGED and sim.stopped_at(radam) <= 5


def story_himmelblau_basins(s, sim, f):
    minima = s.build_surface().minima
    ends = [int(np.argmin(np.hypot(*(minima - p).T))) for p in f.positions]
    assert sorted(ends) == [0, 1, 2, 3]
    assert all(_near(p, minima[k], 1e-6) for p, k in zip(f.positions, ends, strict=True))


def story_saddle_escape(s, sim, f):
    ridge, momentum, off, noisy, newton = range(5)
    for i in (ridge, momentum, newton):  # "converged", at the saddle
        assert sim.status(i) is Status.CONVERGED
        assert _near(f.positions[i], (0.0, 0.0), 1e-5) and f.losses[i] > -1e-9
    assert sim.status(off) is Status.CONVERGED and f.losses[off] == pytest.approx(-0.25)
    assert sim.stopped_at(off) > 3 * sim.stopped_at(ridge) / 2  # the escape takes its time
    assert sim.status(noisy) is Status.RUNNING and abs(f.positions[noisy][1]) > 0.5
    assert sim.history(noisy).positions[:5, 1].any()


def story_rastrigin_momentum(s, sim, f):
    assert f.losses[0] > 30 and f.losses[1] > 30
    assert f.losses[2] < 1e-9 and _near(f.positions[2], (0.0, 0.0), 1e-6)


def story_goldstein_price(s, sim, f):
    assert s.build_surface().log_scale
    assert sim.status(0) is Status.DIVERGED and sim.stopped_at(0) <= 5
    assert f.losses[1] < 3.01 and f.losses[3] < 3.01
    assert f.losses[2] > 10


def story_1d_narrow_well(s, sim, f):
    surface = s.build_surface()
    assert surface.one_d and all(sim.history(i).positions[:, 1].max() == 0 for i in range(3))
    ceiling = 2 / surface.hessian(surface.minima)[0, 0, 0]
    lrs = [r.params["lr"] for r in s.runs]
    assert lrs[0] < ceiling < lrs[1] < lrs[2]
    assert _near(f.positions[0], surface.minima[0], 1e-9)  # below 2/f'': settles in the well
    x = sim.history(1).positions[-20:, 0]  # just above: a two-cycle across the well
    assert (np.sign(x[1:]) != np.sign(x[:-1])).all() and f.losses[1] > -1.25
    assert _near(f.positions[2], surface.local_minima[0], 1e-3)  # far above: over the well
    assert (sim.history(2).positions[:, 0] < 0.5).sum() < 12  # it spent few steps near it


def story_nn_minibatch(s, sim, f):
    surface = s.build_surface()
    assert surface.data is not None and [r.batch_size for r in s.runs] == [None, 8, 1]
    best = surface.minima[0]
    full, eight, one = range(3)
    assert _near(f.positions[full], best, 1e-6)  # the exact gradient settles on the minimum
    # Mini-batches keep jittering around it, the smaller the batch the wider.
    jitter = [np.hypot(*(sim.history(i).positions[-200:] - best).T).mean() for i in range(3)]
    assert jitter[full] < 1e-4 < 0.02 < jitter[eight] < 0.5 < jitter[one]
    assert f.batches[full] is None and len(f.batches[eight]) == 8 and len(f.batches[one]) == 1


def story_nn_tanh_mirror(s, sim, f):
    surface = s.build_surface()
    plus, minus = surface.minima
    np.testing.assert_array_equal(plus, -minus)
    left, right, saddle, adam, adam_mirror = range(5)
    assert _near(f.positions[left], minus, 1e-5) and _near(f.positions[right], plus, 1e-5)
    np.testing.assert_array_equal(f.positions[left], -f.positions[right])  # exactly mirrored
    assert (sim.history(saddle).positions == 0).all()  # the gradient at the saddle is 0
    assert _near(f.positions[adam], plus, 0.1) and _near(f.positions[adam_mirror], minus, 0.1)


STORIES = {
    name[len("story_") :].replace("_", "-"): fn
    for name, fn in globals().items()
    if name.startswith("story_")
}


def test_every_shipped_scenario_has_a_story_test():
    assert sorted(STORIES) == sorted(s.name for s in shipped())


@pytest.mark.parametrize("name", sorted(STORIES))
def test_shipped_scenario_loads_runs_and_tells_its_story(name):
    path = shipped_path(name)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    s = Scenario.from_json(text)
    assert s.to_json() == text  # shipped files are in the canonical form Scenario.save writes
    s, sim, frame = _ran(name)
    for i in range(sim.n_runs):
        assert all(np.isfinite(a).all() for a in sim.history(i)[:4])
    STORIES[name](s, sim, frame)


def test_the_readme_example_is_a_valid_scenario():
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    section = readme.read_text(encoding="utf-8").split("## Scenario files", 1)[1]
    example = re.search(r"```json\n(.*?)```", section, re.S).group(1)
    s = Scenario.from_json(example)
    assert s.runs[1].schedule == {"name": "step", "step_size": 100, "gamma": 0.5}


def _nn_doc(**run) -> dict:
    return {
        "gdsim": 1,
        "surface": {"name": "nn-linear", "params": {"seed": 3, "offset": -1.5, "spread": 0.5}},
        "runs": [{"optimizer": "sgd", "params": {"lr": 0.05}, "start": [0.0, 0.0], **run}],
    }


def test_batch_size_and_nn_surface_round_trip():
    s = Scenario.from_dict(_nn_doc(batch_size=8))
    assert s.runs[0].batch_size == 8
    assert s.surface.params == {"seed": 3.0, "offset": -1.5, "spread": 0.5}
    again = Scenario.from_json(s.to_json())
    assert again.to_dict() == s.to_dict() and again.runs[0].batch_size == 8
    np.testing.assert_array_equal(again.build_surface().data.x, s.build_surface().data.x)
    a, b = s.to_simulation(), again.to_simulation()
    a.step(50)
    b.step(50)
    np.testing.assert_array_equal(a.history(0).positions, b.history(0).positions)
    full = Scenario.from_dict(_nn_doc())
    assert full.runs[0].batch_size is None and "batch_size" not in full.to_dict()["runs"][0]
    assert Scenario.from_dict(_nn_doc(batch_size=None)).runs[0].batch_size is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, "must be in [1, 1000000], got 0"),
        (-4, "must be in [1, 1000000]"),
        (2.5, "must be an integer, got 2.5"),
        ("8", "must be an integer, got a string"),
        (True, "must be an integer, got a boolean"),
    ],
)
def test_bad_batch_sizes_are_refused_naming_the_field(value, reason):
    with pytest.raises(ScenarioError) as e:
        Scenario.from_dict(_nn_doc(batch_size=value))
    assert e.value.field == "runs[0].batch_size"
    assert reason in e.value.reason


def test_bad_nn_surface_params_are_refused_naming_the_field():
    doc = _nn_doc()
    doc["surface"]["params"]["seed"] = 1.5
    with pytest.raises(ScenarioError, match="seed must be a whole number") as e:
        Scenario.from_dict(doc)
    assert e.value.field == "surface.params"
    doc["surface"]["params"]["seed"] = 10_000
    with pytest.raises(ScenarioError, match=r"must be in \[0, 9999\]") as e:
        Scenario.from_dict(doc)
    assert e.value.field == "surface.params.seed"


def test_an_absurdly_large_box_is_refused_with_its_field():
    data = {
        "gdsim": 1,
        "surface": {"formula": "x^2 + y^2", "box": [[-1e308, 1e308], [-1, 1]]},
        "runs": [],
    }
    with pytest.raises(ScenarioError, match=r"surface\.box\[0\].*within"):
        Scenario.from_dict(data)
