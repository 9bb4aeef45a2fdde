"""The worker answers "explain" with the run's next step, and takes only that step."""

from __future__ import annotations

import numpy as np
import pytest

from gdsim.engine import surfaces
from gdsim.engine.simulation import RunSpec, StopRules
from gdsim.ui.worker import SimulationWorker


@pytest.fixture
def worker(qtbot):
    w = SimulationWorker()
    w.start()
    specs = [
        RunSpec("a", "adam", {"lr": 0.1}, (1.0, 1.0), noise=0.2),
        RunSpec("b", "sgd", {"lr": 0.1}, (-1.0, 0.5)),
    ]
    with qtbot.waitSignal(w.packetReady, timeout=5000):
        w.load(surfaces.get("bowl"), [10, 11], specs, 100, StopRules(), 0)
    yield w
    w.shutdown()


def test_explain_reply_and_apply(worker, qtbot):
    with qtbot.waitSignal(worker.packetReady, timeout=5000):
        worker.post("step", 3)
    with qtbot.waitSignal(worker.explained, timeout=5000) as sig:
        worker.post("explain", "t1", 10)
    token, run_id, rs, ex, error, serial = sig.args
    assert (token, run_id, error) == ("t1", 10, "")
    assert rs.steps == 3 and ex.optimizer == "adam" and np.any(rs.noise != 0)
    # a stale apply (wrong step count) is refused and changes nothing
    with qtbot.waitSignal(worker.failed, timeout=5000) as bad:
        worker.post("apply_step", 10, 2)
    assert "out of date" in bad.args[0]
    packets = []
    worker.packetReady.connect(packets.append)
    worker.post("apply_step", 10, 3)
    qtbot.waitUntil(lambda: any(int(p.frame.step[0]) == 4 for p in packets), timeout=5000)
    p = next(p for p in packets if int(p.frame.step[0]) == 4)
    assert p.serial >= serial
    np.testing.assert_array_equal(p.frame.positions[0], ex.new_position)


def test_internals_and_gd_steps_only_when_asked(worker, qtbot):
    with qtbot.waitSignal(worker.packetReady, timeout=5000) as sig:
        worker.post("step", 2)
    assert sig.args[0].internals == () and sig.args[0].gd_steps is None
    packets = []
    worker.packetReady.connect(packets.append)
    worker.post("internals", True)
    worker.post("gd_steps", True)
    # the two messages may be answered by one packet or by two: wait for one with both
    qtbot.waitUntil(
        lambda: any(p.internals and p.gd_steps is not None for p in packets), timeout=5000
    )
    p = next(p for p in packets if p.internals and p.gd_steps is not None)
    assert p.internals[0] is not None and p.internals[1] is None  # Adam has one, SGD not
    # −lr·∇f at the point the last step started from (noise-free gradient of the bowl)
    assert p.gd_steps.shape == (2, 2) and np.all(np.isfinite(p.gd_steps))
    # for plain GD (run b) it is exactly the step it took; for Adam it is not
    np.testing.assert_array_equal(p.gd_steps[1], p.frame.deltas[1])
    assert not np.allclose(p.gd_steps[0], p.frame.deltas[0], rtol=0.1)
    with qtbot.waitSignal(worker.explained, timeout=5000) as sig:
        worker.post("explain", 1, 99)
    assert sig.args[4] == "no such run"
