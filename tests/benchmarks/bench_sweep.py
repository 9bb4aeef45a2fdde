"""Hyperparameter sweeps: 100 x 100 cells x 500 steps, the whole grid stepped at once.

Run: ``.venv/bin/python tests/benchmarks/bench_sweep.py [--cells 100] [--steps 500] [--trials 3]``.
Writes tests/benchmarks/results/sweep.json and prints a table. Target: each sweep under 3 s here.

What is timed (best of ``--trials``; the machine may be shared):

- ``engine``: :func:`gdsim.engine.sweep.sweep` alone, for SGD (lr log-spaced 1e-4..1 x momentum
  0..0.99) and Adam (lr log-spaced 1e-4..1 x beta1 0..0.99), on Rosenbrock and on the κ = 50
  ravine. Many cells diverge on the way (large learning rates); they leave the arrays, so the
  count of cells still running falls as the sweep goes on.
- ``process``: ``gdsim sweep`` end to end for the Rosenbrock SGD case, writing the CSV (10,000
  rows) and the PNG heat map: interpreter start, imports, the sweep, the file.
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

from gdsim.engine import surfaces  # noqa: E402
from gdsim.engine.sweep import parse_axis, sweep  # noqa: E402
from gdsim.scenario import Scenario  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "sweep.json"
GDSIM = [sys.executable, "-m", "gdsim.cli"]
TARGET_SECONDS = 3.0

SURFACES = {
    "rosenbrock": (lambda: surfaces.get("rosenbrock"), (-1.5, 2.0)),
    "ravine": (lambda: surfaces.get("ravine", kappa=50.0), (-2.5, 1.0)),
}
OPTIMIZERS = {
    "sgd": ("momentum", {"lr": 1e-3, "momentum": 0.9}),
    "adam": ("beta1", {"lr": 1e-2}),
}


def best_of(trials: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(trials):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100, help="values per axis")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    n, steps, trials = args.cells, args.steps, args.trials

    rows = []
    for sname, (make, start) in SURFACES.items():
        surface = make()
        for oname, (yname, params) in OPTIMIZERS.items():
            x = parse_axis(f"lr=1e-4:1:log:{n}")
            y = parse_axis(f"{yname}=0:0.99:{n}")

            def run(surface=surface, oname=oname, params=params, x=x, y=y, start=start):
                return sweep(surface, oname, params, start, x, y, steps=steps)

            seconds, r = best_of(trials, run)
            rows.append(
                {
                    "case": f"{sname} / {oname}: lr (log) x {yname}",
                    "seconds": seconds,
                    "cells": n * n,
                    "steps": steps,
                    "cell_steps_per_second": n * n * steps / seconds,
                    "diverged": int(r.diverged.sum()),
                    "reached_tol": int((~r.diverged & np.isfinite(r.steps_to_tol)).sum()),
                    "under_target": seconds < TARGET_SECONDS,
                }
            )

    process = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.json")
        doc = {
            "gdsim": 1,
            "surface": {"name": "rosenbrock"},
            "steps": steps,
            "runs": [{"optimizer": "sgd", "params": OPTIMIZERS["sgd"][1], "start": [-1.5, 2.0]}],
        }
        Scenario.from_dict(doc).save(path)
        for ext in ("csv", "png"):
            out = os.path.join(tmp, f"map.{ext}")
            argv = ["sweep", path, "--x", f"lr=1e-4:1:log:{n}", "--y", f"momentum=0:0.99:{n}"]
            argv += ["-q", "--out", out]

            def proc(argv=argv):
                p = subprocess.run([*GDSIM, *argv], capture_output=True, text=True)
                if p.returncode:
                    raise SystemExit(f"gdsim {' '.join(argv)} failed:\n{p.stderr}")

            seconds, _ = best_of(trials, proc)
            process[f"gdsim sweep --out .{ext}"] = {
                "seconds": seconds,
                "bytes": os.path.getsize(out),
            }

    result = {
        "benchmark": "bench_sweep",
        "command": "python tests/benchmarks/bench_sweep.py",
        "target_seconds": TARGET_SECONDS,
        "trials": trials,
        "engine": rows,
        "process": process,
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"sweeps: {n} x {n} cells x {steps} steps, best of {trials} (target < {TARGET_SECONDS} s)"
    )
    print(f"  {'case':<40} {'seconds':>8} {'Mcell-steps/s':>14} {'diverged':>9} {'reached':>8}")
    for r in rows:
        print(
            f"  {r['case']:<40} {r['seconds']:8.2f} {r['cell_steps_per_second'] / 1e6:14.1f}"
            f" {r['diverged']:9d} {r['reached_tol']:8d}"
        )
    for name, p in process.items():
        print(f"  {name:<40} {p['seconds']:8.2f}   ({p['bytes'] / 1e3:.0f} kB)")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
