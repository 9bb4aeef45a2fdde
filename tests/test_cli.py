"""The gdsim command: exit codes, one-line errors, files that read back, lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import numpy as np
import pytest

from gdsim import cli
from gdsim.engine import surfaces
from gdsim.engine.simulation import RunSpec, Simulation, Status
from gdsim.export.data import read_csv, read_json
from gdsim.scenario import Scenario, shipped, shipped_path
from tests.cli_helpers import assert_one_line_error, run_main, unwritable_folder


def gdsim(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The real command, in a fresh interpreter, as a person would run it."""
    return subprocess.run(
        [sys.executable, "-m", "gdsim.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


# ------------------------------------------------------------------ run: success
def test_run_a_shipped_scenario_in_a_real_process(tmp_path):
    out = tmp_path / "race.csv"
    p = gdsim("run", "default", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    scenario = Scenario.load(shipped_path("default"))
    for run in scenario.runs:
        assert run.label in p.stdout
    assert f"wrote {out}" in p.stdout
    back = read_csv(out)
    assert sorted(back) == list(range(len(scenario.runs)))
    assert all(len(r["step"]) == scenario.steps + 1 for r in back.values())


def test_quick_form_gives_the_numbers_of_the_engine(tmp_path, capsys):
    out = tmp_path / "t.csv"
    code, stdout, err = run_main(
        capsys,
        *("run", "--surface", "booth", "--optimizer", "sgd", "--param", "lr=0.01"),
        *("--param", "momentum=0.9", "--start", "1,2", "--steps", "100", "--out", str(out)),
    )
    assert code == 0, err
    sim = Simulation(
        surfaces.get("booth"), [RunSpec("SGD", "sgd", {"lr": 0.01, "momentum": 0.9}, (1.0, 2.0))]
    )
    sim.step(100)
    back = read_csv(out)[0]
    h = sim.history(0)
    assert back["step"].tolist() == list(range(101))
    assert back["x"].tobytes() == h.positions[:, 0].tobytes()
    assert back["loss"].tobytes() == h.losses.tobytes()
    assert "booth" in stdout and "running" in stdout


def test_quick_form_batch_size_descends_the_engines_mini_batches(tmp_path, capsys):
    out = tmp_path / "t.json"
    code, _, err = run_main(
        capsys,
        *("run", "--surface", "nn-logistic", "--optimizer", "sgd", "--param", "lr=2"),
        *("--batch-size", "8", "--start", "0,0", "--steps", "50", "--out", str(out)),
    )
    assert code == 0, err
    spec = RunSpec("SGD", "sgd", {"lr": 2.0}, (0.0, 0.0), batch_size=8)
    sim = Simulation(surfaces.get("nn-logistic"), [spec])
    sim.step(50)
    doc = read_json(out)["runs"][0]
    assert doc["batch_size"] == 8
    back = doc["trajectory"]
    assert back["x"].tobytes() == sim.history(0).positions[:, 0].tobytes()
    full = Simulation(surfaces.get("nn-logistic"), [RunSpec("SGD", "sgd", {"lr": 2.0}, (0, 0))])
    full.step(50)
    assert back["x"].tobytes() != full.history(0).positions[:, 0].tobytes()
    code, _, err = run_main(capsys, "run", "--surface", "nn-logistic", "--optimizer", "sgd",
                            "--batch-size", "2.5")  # fmt: skip
    assert_one_line_error(code, err, "--batch-size", "integer")


def test_quick_form_pairs_bools_schedules_and_several_starts(tmp_path, capsys):
    out = tmp_path / "t.json"
    code, _, err = run_main(
        capsys,
        *("run", "--surface", "rosenbrock", "--optimizer", "adam"),
        *("--param", "lr=0.02", "--param", "betas=0.8,0.99", "--param", "amsgrad=true"),
        *(
            "--schedule",
            "step",
            "--schedule-param",
            "step_size=10",
            "--schedule-param",
            "gamma=0.5",
        ),
        *("--start", "-1,1", "--start", "0.5,2", "--label", "A", "--steps", "30"),
        *("--out", str(out), "--seed", "3", "--noise", "0.1"),
    )
    assert code == 0, err
    doc = read_json(out)
    assert [r["label"] for r in doc["runs"]] == ["A 1", "A 2"]
    r = doc["runs"][0]
    assert r["params"] == {"lr": 0.02, "betas": [0.8, 0.99], "amsgrad": True}
    assert r["schedule"] == {"name": "step", "step_size": 10, "gamma": 0.5}
    assert r["noise"] == 0.1 and doc["seed"] == 3
    assert r["trajectory"]["lr"][:12].tolist() == [0.02] * 10 + [0.01] * 2
    assert doc["scenario"]["runs"][1]["start"] == [0.5, 2.0]


def test_quick_form_uses_the_surfaces_default_start(capsys, tmp_path):
    out = tmp_path / "h.json"
    code, _, err = run_main(
        capsys, "run", "--surface", "himmelblau", "--optimizer", "adam", "--out", str(out)
    )
    assert code == 0, err
    start = surfaces.get("himmelblau").starts[0]
    assert read_json(out)["runs"][0]["start"] == [float(start[0]), float(start[1])]


def test_divergence_is_a_result_not_an_error(tmp_path, capsys):
    out = tmp_path / "d.json"
    code, stdout, err = run_main(
        capsys,
        *("run", "--surface", "bowl", "--optimizer", "sgd", "--param", "lr=1.5"),
        *("--start", "1,1", "--steps", "50", "--out", str(out)),
    )
    assert code == 0 and err == ""
    r = read_json(out)["runs"][0]
    assert r["status"] == "diverged" and r["stopped_at"] is not None
    assert np.isfinite(r["trajectory"]["x"]).all()
    assert f"diverged at {r['stopped_at']}" in stdout


def test_stop_rule_flags_and_overrides_on_a_scenario_file(tmp_path, capsys):
    path = tmp_path / "s.json"
    Scenario.from_dict(
        {
            "gdsim": 1,
            "surface": {"name": "bowl"},
            "steps": 10,
            "runs": [{"optimizer": "sgd", "params": {"lr": 0.1}, "start": [1, 1]}],
        }
    ).save(path)
    out = tmp_path / "o.json"
    code, _, err = run_main(
        capsys, "run", str(path), "--steps", "1000", "--grad-tol", "1e-6", "--out", str(out)
    )
    assert code == 0, err
    r = read_json(out)["runs"][0]
    assert r["status"] == "converged" and r["reason"] == "grad_tol"
    assert 10 < r["stopped_at"] < 1000
    code, _, err = run_main(capsys, "run", str(path), "--max-steps", "5", "-q")
    assert code == 0 and err == ""


def test_quiet_prints_nothing(capsys):
    code, out, err = run_main(capsys, "run", "default", "--steps", "3", "-q")
    assert (code, out, err) == (0, "", "")


# ------------------------------------------------------------------ run: bad input
BAD = [
    (
        ["run", "--surface", "bowl", "--optimizer", "adamm"],
        ["--optimizer", "unknown optimizer 'adamm'", "sgd"],
    ),
    (
        ["run", "--surface", "bowel", "--optimizer", "sgd"],
        ["--surface", "unknown surface 'bowel'", "bowl"],
    ),
    (
        ["run", "--surface", "bowl", "--optimizer", "sgd", "--param", "lr=-1"],
        ["--param lr: must be >= 0, got -1"],
    ),
    (
        ["run", "--surface", "bowl", "--optimizer", "sgd", "--param", "lr"],
        ["--param: expected NAME=VALUE, got 'lr'"],
    ),
    (
        ["run", "--surface", "bowl", "--optimizer", "sgd", "--param", "lr=fast"],
        ["--param lr: must be a number, got a string"],
    ),
    (
        ["run", "--surface", "bowl", "--optimizer", "sgd", "--param", "momentun=0.9"],
        ["--param momentun: unknown field"],
    ),
    (
        ["run", "--surface", "bowl", "--optimizer", "adam", "--param", "betas=0.9,1"],
        ["--param betas: must be in [0, 1)"],
    ),
    (
        ["run", "--surface", "bowl", "--optimizer", "sgd", "--start", "1"],
        ["--start: expected 2 numbers"],
    ),
    (
        ["run", "--surface", "bowl", "--optimizer", "sgd", "--schedule", "sometimes"],
        ["--schedule", "unknown schedule"],
    ),
    (
        ["run", "--surface", "bowl", "--optimizer", "sgd", "--grad-tol", "-1"],
        ["--grad-tol: must be > 0"],
    ),
    (["run", "--surface", "bowl"], ["--optimizer is required"]),
    (["run"], ["give a SCENARIO file"]),
    (["run", "--formula", "x^^2", "--optimizer", "sgd", "--start", "0,0"], ["--formula:"]),
    (
        ["run", "default", "--optimizer", "sgd"],
        ["--optimizer cannot be combined with a scenario file"],
    ),
    (["run", "no-such-file.json"], ["no scenario file 'no-such-file.json'", "default"]),
    (["run", "default", "--steps", "x"], ["--steps", "expected an integer"]),
    (["run", "default", "--steps", "100000000"], ["--steps: must be <= 10000000"]),
    (["run", "default", "--frobnicate"], ["unrecognized arguments: --frobnicate"]),
    (["run", "default", "--out", "t.txt"], ["--out: unknown file type (extension '.txt')"]),
    (
        ["run", "default", "--out", "/no/such/folder/t.csv"],
        ["--out: folder '/no/such/folder' does not exist"],
    ),
    (["list", "colours"], ["invalid choice: 'colours'"]),
]


@pytest.mark.parametrize(("argv", "needles"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needles):
    code, out, err = run_main(capsys, *argv)
    assert_one_line_error(code, err, *needles)
    assert out == ""


def test_bad_input_in_a_real_process(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"gdsim": 1,\n "surface": {"name": "bowl"}\n "runs": []}')
    p = gdsim("run", str(broken))
    assert_one_line_error(p.returncode, p.stderr, str(broken), "line 3, column 2", "not valid JSON")
    p = gdsim("run", "--surface", "bowl", "--optimizer", "sgd", "--param", "lr=-0.1")
    assert_one_line_error(p.returncode, p.stderr, "--param lr: must be >= 0, got -0.1")
    assert p.stdout == ""


def test_an_unwritable_output_leaves_no_file_and_says_why(tmp_path, capsys):
    (tmp_path / "plain").write_text("a file, not a folder")
    code, _out, err = run_main(
        capsys, "run", "default", "--steps", "5", "--out", str(tmp_path / "plain" / "t.csv")
    )
    assert_one_line_error(code, err, "--out: folder", "does not exist")
    target = tmp_path / "t.csv"

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("os.replace", refuse)
        code, _, err = run_main(capsys, "run", "default", "--steps", "5", "--out", str(target))
    assert_one_line_error(code, err, f"cannot write '{target}': Permission denied")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


# ------------------------------------------------------------------ list
@pytest.mark.parametrize("what", ["surfaces", "optimizers", "schedules", "scenarios"])
def test_list_prints_names_with_their_stories(capsys, what):
    code, out, err = run_main(capsys, "list", what)
    assert code == 0 and err == ""
    expected = {
        "surfaces": ["rosenbrock", "two-wells", "himmelblau"],
        "optimizers": ["sgd", "adam", "newton", "lion"],
        "schedules": ["constant", "step", "cosine"],
        "scenarios": [s.name for s in shipped()],
    }[what]
    lines = out.splitlines()
    for name in expected:
        line = next(line for line in lines if line.split()[0] == name)
        assert len(line.split()) > 2  # a story follows the name


def test_list_everything(capsys):
    code, out, _ = run_main(capsys, "list")
    assert code == 0
    for header in ("surfaces:", "optimizers:", "schedules:", "scenarios:"):
        assert header in out


# ------------------------------------------------------------------ the window
def test_no_window_module_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gdsim.ui.app", None)  # import fails like a missing module
    code, _, err = run_main(capsys)
    assert_one_line_error(code, err, "the desktop window cannot start", "gdsim run --help")


def test_the_window_gets_the_scenario_path(capsys, monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("gdsim.ui.app")
    fake.main = lambda path: calls.append(path) or 0
    monkeypatch.setitem(sys.modules, "gdsim.ui.app", fake)
    assert run_main(capsys)[0] == 0
    assert run_main(capsys, "ravine-momentum")[0] == 0
    mine = tmp_path / "mine.json"
    Scenario.load(shipped_path("default")).save(mine)
    assert run_main(capsys, str(mine))[0] == 0
    assert calls == [None, shipped_path("ravine-momentum"), str(mine)]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, _, err = run_main(capsys, str(bad))
    assert_one_line_error(code, err, "bad.json", "gdsim: missing (required)")
    assert len(calls) == 3  # no window for a broken file


# ------------------------------------------------------------------ the command itself
def test_help_and_version_exit_0(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0 and "gdsim run" in out and "gdsim list" in out
    code, out, _ = run_main(capsys, "run", "--help")
    assert code == 0 and "--param" in out and "--out" in out
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.startswith("gdsim ")


def test_version_and_help_import_nothing_heavy():
    code = (
        "import sys, io, contextlib\n"
        "from gdsim import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert cli.main(['--version']) == 0\n"
        "    assert cli.main(['--help']) == 0\n"
        "heavy = sorted(m for m in ('numpy', 'sympy', 'PySide6') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


def test_the_installed_entry_point_runs(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "gdsim")
    p = subprocess.run([exe, "list", "optimizers"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "adam" in p.stdout


def test_summary_table_reports_status_per_run(capsys):
    code, out, _ = run_main(capsys, "run", "lr-too-high")
    assert code == 0
    s = Scenario.load(shipped_path("lr-too-high"))
    sim = s.to_simulation()
    sim.step(s.steps)
    for i, run in enumerate(s.runs):
        line = next(line for line in out.splitlines() if run.label in line)
        assert sim.status(i).value in line
    assert any(sim.status(i) is Status.DIVERGED for i in range(sim.n_runs))


def test_a_read_only_folder_is_a_clear_error_and_leaves_nothing(tmp_path, capsys):
    folder = unwritable_folder(tmp_path)
    before = sorted(os.listdir(folder))
    target = os.path.join(folder, "t.csv")
    code, out, err = run_main(capsys, "run", "default", "--steps", "5", "--out", target)
    assert_one_line_error(code, err, f"cannot write '{target}': Permission denied")
    assert out == ""
    assert sorted(os.listdir(folder)) == before


def test_running_out_of_memory_is_one_clear_line(monkeypatch, capsys):
    from gdsim.engine.simulation import Simulation

    def no_memory(self, n=1):
        raise MemoryError

    monkeypatch.setattr(Simulation, "step", no_memory)
    code = cli.main(["run", "--surface", "bowl", "--optimizer", "sgd", "--steps", "10", "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "not enough memory" in err and "Traceback" not in err
