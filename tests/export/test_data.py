"""Trajectory files: every float reads back as the float written; the files say how runs ended."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from gdsim.engine.simulation import RunSpec, Simulation, Status
from gdsim.export import data
from gdsim.export.data import (
    CSV_COLUMNS,
    RunData,
    read_csv,
    read_json,
    write_csv,
    write_json,
    write_trajectories,
)


@dataclass(frozen=True)
class Bowl:
    name: str = "bowl"
    title: str = "Bowl"
    formula: str = "x^2 + y^2"
    box: tuple = ((-2.0, 2.0), (-2.0, 2.0))
    params: dict = field(default_factory=dict)

    def value(self, p):
        return (p * p).sum(axis=1)

    def gradient(self, p):
        return 2.0 * p

    def hessian(self, p):
        return np.broadcast_to(2.0 * np.eye(2), (len(p), 2, 2)).copy()


def _sim() -> Simulation:
    sim = Simulation(
        Bowl(),
        [
            RunSpec('plain, "quoted" GD', "sgd", {"lr": 0.1}, (1.0, 0.3)),
            RunSpec("too high", "sgd", {"lr": 1.5}, (1.0, 1.0)),
            RunSpec("adam", "adam", {"lr": 0.03, "betas": (0.8, 0.99)}, (-1.7, 0.1), noise=0.05),
        ],
        seed=4,
    )
    sim.step(40)
    return sim


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def test_csv_reads_back_bit_for_bit(tmp_path):
    sim = _sim()
    path = tmp_path / "t.csv"
    rows = write_csv(path, sim)
    assert rows == sum(sim.steps_taken(i) + 1 for i in range(3))
    back = read_csv(path)
    assert sorted(back) == [0, 1, 2]
    for i in range(3):
        h = sim.history(i)
        r = back[i]
        assert r["step"].tolist() == list(range(len(h.losses)))
        assert _same(r["x"], h.positions[:, 0]) and _same(r["y"], h.positions[:, 1])
        assert _same(r["loss"], h.losses)
        assert _same(r["grad_x"], h.gradients[:, 0]) and _same(r["grad_y"], h.gradients[:, 1])
        assert _same(r["lr"], h.lrs)
        assert set(r["label"]) == {sim.runs[i].label}


def test_csv_layout_status_and_quoting(tmp_path):
    sim = _sim()
    path = tmp_path / "t.csv"
    write_csv(path, sim)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert lines[0].startswith("run,step,x,y,loss")
    assert lines[1].startswith("0,0,1.0,0.3,")  # step 0 is the start, floats as repr
    rows = list(csv.DictReader(path.open(newline="")))
    diverged = [r for r in rows if r["run"] == "1"]
    assert [r["status"] for r in diverged[:-1]] == ["running"] * (len(diverged) - 1)
    assert diverged[-1]["status"] == "diverged" and diverged[-1]["step"] == "12"
    assert rows[0]["label"] == 'plain, "quoted" GD'
    assert {r["status"] for r in rows if r["run"] == "0"} == {"running"}


def test_awkward_floats_survive_both_formats(tmp_path):
    awkward = np.array([0.1, 1 / 3, 5e-324, 1.7976931348623157e308, -0.0, 2.0**-1022, 1e22])
    n = len(awkward)
    run = RunData(
        RunSpec("w", "sgd", {"lr": 0.1}, (0.1, 1 / 3)),
        np.stack([awkward, awkward[::-1]], axis=1),
        awkward,
        np.stack([-awkward, awkward], axis=1),
        awkward[::-1].copy(),
        Status.CONVERGED,
        n - 1,
        "grad_tol",
    )
    write_csv(tmp_path / "w.csv", [run])
    back = read_csv(tmp_path / "w.csv")[0]
    for k, col in (("x", awkward), ("y", awkward[::-1]), ("loss", awkward), ("grad_x", -awkward)):
        assert _same(back[k], col), k
    assert back["status"][-1] == "converged"
    write_json(tmp_path / "w.json", [run], Bowl(), 0)
    t = read_json(tmp_path / "w.json")["runs"][0]["trajectory"]
    assert _same(t["x"], awkward) and _same(t["grad_x"], -awkward) and _same(t["lr"], awkward[::-1])


def test_json_holds_the_same_numbers_and_how_each_run_ended(tmp_path):
    sim = _sim()
    path = tmp_path / "t.json"
    write_trajectories(path, sim)
    doc = read_json(path)
    assert doc["kind"] == "gdsim-trajectories" and doc["seed"] == 4
    assert doc["surface"]["name"] == "bowl" and doc["scenario"] is None
    runs = doc["runs"]
    assert [r["status"] for r in runs] == ["running", "diverged", "running"]
    assert runs[1]["stopped_at"] == 13 and runs[1]["reason"] == "out of bounds"
    assert runs[1]["steps"] == 12 and runs[0]["stopped_at"] is None
    assert runs[2]["params"] == {"lr": 0.03, "betas": [0.8, 0.99]} and runs[2]["noise"] == 0.05
    assert runs[0]["label"] == 'plain, "quoted" GD' and runs[0]["optimizer"] == "sgd"
    for i, r in enumerate(runs):
        h = sim.history(i)
        assert _same(r["trajectory"]["x"], h.positions[:, 0])
        assert _same(r["trajectory"]["loss"], h.losses)
        assert r["trajectory"]["step"].tolist() == list(range(len(h.losses)))
    json.loads(path.read_text())  # plain JSON, no NaN extensions


def test_the_format_comes_from_the_extension(tmp_path):
    sim = _sim()
    write_trajectories(tmp_path / "a.CSV", sim)
    assert (tmp_path / "a.CSV").read_text().startswith("run,step")
    with pytest.raises(
        ValueError, match=r"unknown file type \(extension '\.txt'\); use \.csv or \.json"
    ):
        write_trajectories(tmp_path / "a.txt", sim)
    with pytest.raises(ValueError, match="extension none"):
        write_trajectories(tmp_path / "noext", sim)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.CSV"]


def test_a_failure_mid_write_leaves_no_partial_file(tmp_path, monkeypatch):
    sim = _sim()
    target = tmp_path / "t.csv"
    target.write_text("previous export\n")
    real = data._csv_blocks

    def failing(runs):
        blocks = real(runs)
        yield next(blocks)
        yield next(blocks)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data, "_csv_blocks", failing)
    with pytest.raises(OSError, match="No space"):
        write_csv(target, sim)
    assert target.read_text() == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
