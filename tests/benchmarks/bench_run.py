"""`gdsim run` end to end: 100,000 steps of 8 balls on Rosenbrock, a mix of optimizers.

Run: ``.venv/bin/python tests/benchmarks/bench_run.py [--steps N] [--trials K]``. Writes
tests/benchmarks/results/run.json and prints a table. Target: under 5 s end to end here.

What is timed (each figure the best of ``--trials``; the machine may be shared):

- ``process, no file``: ``gdsim run bench.json -q`` in a fresh interpreter: interpreter start,
  imports (NumPy, SymPy), scenario validation, the 100,000 steps, the summary.
- ``process, --out .csv`` / ``.json``: the same plus writing every row (800,008 of them).
- ``engine only``: ``Simulation.step(steps)`` in this process, nothing else.
- ``process start``: ``gdsim --version``, the floor under every command.

The mix (8 balls, 3 optimizer groups): plain GD, heavy ball and Nesterov (sgd), Adam, AMSGrad and
an Adam with other betas (adam), RMSprop and centred RMSprop (rmsprop). One gradient call per
step serves all 8 balls; one update call per group.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from gdsim.scenario import Scenario  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "run.json"
GDSIM = [sys.executable, "-m", "gdsim.cli"]

START = [-1.5, 2.0]
RUNS = [
    {"label": "GD", "optimizer": "sgd", "params": {"lr": 1e-4}},
    {"label": "heavy ball", "optimizer": "sgd", "params": {"lr": 1e-4, "momentum": 0.9}},
    {
        "label": "Nesterov",
        "optimizer": "sgd",
        "params": {"lr": 1e-4, "momentum": 0.9, "nesterov": True},
    },
    {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}},
    {"label": "AMSGrad", "optimizer": "adam", "params": {"lr": 0.01, "amsgrad": True}},
    {"label": "Adam b=.8,.99", "optimizer": "adam", "params": {"lr": 0.01, "betas": [0.8, 0.99]}},
    {"label": "RMSprop", "optimizer": "rmsprop", "params": {"lr": 1e-3}},
    {"label": "RMSprop c", "optimizer": "rmsprop", "params": {"lr": 1e-3, "centered": True}},
]


def scenario_doc(steps: int) -> dict:
    return {
        "gdsim": 1,
        "title": "bench: 8 balls on Rosenbrock",
        "surface": {"name": "rosenbrock"},
        "steps": steps,
        "seed": 0,
        "runs": [{**r, "start": START} for r in RUNS],
    }


def best_of(trials: int, fn) -> float:
    times = []
    for _ in range(trials):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_process(args: list[str]) -> None:
    p = subprocess.run([*GDSIM, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"gdsim {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    steps, trials = args.steps, args.trials

    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.json")
        Scenario.from_dict(scenario_doc(steps)).save(path)

        rows["process start (gdsim --version)"] = {
            "seconds": best_of(trials, lambda: run_process(["--version"]))
        }
        rows["process, no file"] = {
            "seconds": best_of(trials, lambda: run_process(["run", path, "-q"]))
        }
        for ext in ("csv", "json"):
            out = os.path.join(tmp, f"out.{ext}")
            args = ["run", path, "-q", "--out", out]
            seconds = best_of(trials, lambda args=args: run_process(args))
            rows[f"process, --out .{ext}"] = {"seconds": seconds, "bytes": os.path.getsize(out)}

        scenario = Scenario.load(path)

        def engine() -> None:
            sim = scenario.to_simulation()
            sim.step(steps)

        rows["engine only"] = {"seconds": best_of(trials, engine)}

    engine_s = rows["engine only"]["seconds"]
    rows["engine only"]["steps_per_second"] = steps / engine_s
    rows["engine only"]["ball_steps_per_second"] = steps * len(RUNS) / engine_s
    rows["engine only"]["microseconds_per_step"] = 1e6 * engine_s / steps

    result = {
        "benchmark": "bench_run",
        "command": "gdsim run bench.json -q [--out FILE]",
        "steps": steps,
        "balls": len(RUNS),
        "optimizer_groups": sorted({r["optimizer"] for r in RUNS}),
        "trials": trials,
        "target_seconds": 5.0,
        "results": rows,
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    print(f"gdsim run: {steps} steps x {len(RUNS)} balls on Rosenbrock, best of {trials}")
    for name, r in rows.items():
        extra = ""
        if "bytes" in r:
            extra = f"  ({r['bytes'] / 1e6:.1f} MB)"
        if "microseconds_per_step" in r:
            extra = (
                f"  ({r['microseconds_per_step']:.1f} us/step, "
                f"{r['ball_steps_per_second'] / 1e3:.0f}k ball-steps/s)"
            )
        print(f"  {name:<34} {r['seconds']:7.2f} s{extra}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
