"""The engine runs in a child process that lives and dies with the window."""

from __future__ import annotations

import dataclasses
import os
import signal

import numpy as np
from PySide6.QtCore import Qt

from tests.ui.conftest import color_array, wait_drawn


def _dark_pixels(widget) -> int:
    """How many near-black pixels (text) the widget shows."""
    return int(np.all(color_array(widget.grab().toImage()) < 90, axis=2).sum())


def _play_flat_out(window, qtbot) -> None:
    window.doc.set_steps(10_000_000)
    window.playback.max_speed.setChecked(True)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.packet.playing, timeout=10000)


def test_the_engine_is_another_process(make_window, qtbot):
    window = make_window()
    proc = window.worker.process
    assert proc.is_alive() and proc.pid != os.getpid()
    before = window.packet.frame.step.copy()
    _play_flat_out(window, qtbot)
    # the balls move, so the child's packets arrive and are drawn
    qtbot.waitUntil(lambda: np.all(window.packet.frame.step > before + 50), timeout=10000)
    wait_drawn(qtbot, window)


def test_closing_the_window_ends_the_engine_process(make_window, qtbot):
    window = make_window()
    proc = window.worker.process
    pid = proc.pid
    _play_flat_out(window, qtbot)
    window.close()
    assert window.worker.isFinished()
    assert not proc.is_alive()
    assert proc.exitcode == 0  # it quit when asked, it was not killed
    assert not os.path.exists(f"/proc/{pid}")  # reaped: no zombie left behind


def test_a_killed_engine_is_said_in_the_status_bar_and_replaced(make_window, qtbot):
    window = make_window()
    bar = window.statusBar()
    _play_flat_out(window, qtbot)
    qtbot.waitUntil(lambda: bar.currentMessage() == "", timeout=10000)
    text_before = _dark_pixels(bar)
    old = window.worker.process
    generation = window.packet.generation
    os.kill(old.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "stopped unexpectedly" in bar.currentMessage(), timeout=10000)
    assert "signal 9" in bar.currentMessage() and "restarted" in bar.currentMessage()
    # a person sees it: the message adds text to the bar
    qtbot.waitUntil(lambda: _dark_pixels(bar) > text_before + 200, timeout=5000)
    new = window.worker.process
    assert new is not old and new.is_alive() and not old.is_alive()
    # the scenario is sent again: the balls are back at their starts, paused, and drawn so
    qtbot.waitUntil(
        lambda: not window.packet.playing and np.all(window.packet.frame.step == 0), timeout=10000
    )
    wait_drawn(qtbot, window)
    assert len(window.trails.get(window.doc.ids[0]).points) <= 1
    # a new generation: whatever the window keeps per scenario (trails, explanations) is dropped
    assert window.packet.generation > generation
    # and they roll again when asked, at the speed that was set (flat out)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: np.all(window.packet.frame.step > 500), timeout=10000)
    window.close()
    assert not new.is_alive() and new.exitcode == 0


def test_an_engine_that_keeps_dying_is_replaced_a_few_times_only(qtbot):
    from gdsim.ui import worker as worker_module
    from gdsim.ui.worker import SimulationWorker

    w = SimulationWorker()
    w.start()
    messages: list[str] = []
    w.failed.connect(messages.append)
    try:
        for k in range(worker_module.MAX_RESTARTS + 1):
            proc = w.process
            os.kill(proc.pid, signal.SIGKILL)
            qtbot.waitUntil(lambda n=k + 1: len(messages) == n, timeout=10000)
        assert all("restarted" in m for m in messages[:-1])
        assert "restart gdsim" in messages[-1] and "restarted" not in messages[-1]
        assert not w.process.is_alive()
        w.post("step", 1)  # ignored: nothing to send it to, and no error
    finally:
        w.shutdown()


def test_the_child_exits_when_the_window_side_goes_away():
    # A window that crashes never says "quit": the child must see its pipe close and leave.
    from gdsim.ui import engine_process

    child = engine_process.start()
    assert child.process.is_alive()
    child.to_child.close()
    child.process.join(20)
    assert not child.process.is_alive() and child.process.exitcode == 0
    child.from_child.close()


def test_a_surface_that_cannot_cross_the_pipe_is_refused_and_changes_nothing(qtbot):
    from gdsim.engine import surfaces
    from gdsim.engine.simulation import RunSpec, StopRules
    from gdsim.engine.surfaces import SurfaceFunctions
    from gdsim.ui.worker import SimulationWorker

    w = SimulationWorker()
    w.start()
    try:
        bowl = surfaces.get("bowl")
        with qtbot.waitSignal(w.packetReady, timeout=10000):
            w.load(bowl, [1], [RunSpec("a", "sgd", {"lr": 0.1}, (1.0, 1.0))], 100, StopRules(), 0)
        fake = dataclasses.replace(
            bowl,
            functions=SurfaceFunctions(lambda p: p[..., 0], bowl.gradient, bowl.hessian),
        )
        with qtbot.waitSignal(w.failed, timeout=5000) as bad:
            w.post("surface", fake)
        assert "cannot be pickled" in bad.args[0]
        # the engine still runs the bowl: a step moves the ball by -lr * grad f = -0.1 * (2, 2)
        with qtbot.waitSignal(w.packetReady, timeout=10000) as sig:
            w.post("step", 1)
        np.testing.assert_allclose(sig.args[0].frame.positions[0], (0.8, 0.8))
        assert w.process.is_alive()
    finally:
        assert w.shutdown()


def test_shutdown_while_a_large_snapshot_is_on_its_way_is_clean(qtbot):
    # The snapshot (megabytes of history) fills the pipe; the child must still hear "quit".
    from gdsim.engine import surfaces
    from gdsim.engine.simulation import RunSpec, StopRules
    from gdsim.ui.worker import SimulationWorker

    w = SimulationWorker()
    w.start()
    specs = [RunSpec(str(i), "adam", {"lr": 1e-4}, (-1.0, 1.0 + 0.1 * i)) for i in range(4)]
    with qtbot.waitSignal(w.packetReady, timeout=10000):
        w.load(surfaces.get("rosenbrock"), [0, 1, 2, 3], specs, 10**6, StopRules(), 0)
    with qtbot.waitSignal(w.packetReady, timeout=30000):
        w.post("step", 40_000)
    w.post("snapshot", 1)
    assert w.shutdown()
    assert w.process.exitcode == 0  # it quit when asked: it was not terminated
