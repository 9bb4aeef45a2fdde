"""Run every benchmark and collect their results in tests/benchmarks/results/.

    bash .ci/setup && .venv/bin/pip install -e ".[bench]"
    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python tests/benchmarks/run.py [NAME...]

Each benchmark is a separate process (so one's threads, caches and allocations never colour
another's numbers) and writes its own JSON file; this script only runs them in turn and says
which failed. Benchmarks measure; they assert nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "engine": HERE / "bench_engine.py",  # optimizers x ball counts, beside torch.optim
    "run": HERE / "bench_run.py",  # gdsim run, 100,000 steps, 8 balls on Rosenbrock
    "window": HERE / "bench_window.py",  # the real window under Xvfb: fps, latency, launch
    "sweep": HERE / "bench_sweep.py",  # 100 x 100 cells x 500 steps, SGD and Adam, 2 surfaces
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    failed = []
    for name in names:
        print(f"== {name} ==", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, str(BENCHMARKS[name])], cwd=HERE.parents[1])
        print(f"== {name}: exit {code} in {time.perf_counter() - t0:.0f} s ==\n", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
