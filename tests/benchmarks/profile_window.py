"""Where the window's frame goes: CPU per frame by component, and the paint passes per frame.

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python tests/benchmarks/profile_window.py \
        [SECONDS [STEPS_PER_SECOND]] [--render-only]

Opens the window as bench_window.py does (200x200 grid, 8 balls), plays at STEPS_PER_SECOND
(default 6000; 0 = flat out) and prints, per presented frame: the GUI thread's CPU time in
each part of the redraw and of the paints, every thread's CPU time (engine, llvmpipe, ...),
and which widgets each window paint pass painted. Every pass composites the whole window
through OpenGL when a GL view is in it, so passes per frame is a cost of its own. A tool for
deciding what to change; it measures and asserts nothing, and writes no file.

--render-only records the engine's packets for SECONDS, stops the engine, and replays them at
up to 60 packets a second: the same frames drawn with no engine thread in the process (no
engine CPU, no GIL held by it). It prints fps, CPU per frame and real-key latency (as
bench_window.py measures it): the ceiling of the drawing path on this machine.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_window  # the window set-up is shared with the benchmark


def main(seconds: float, speed: float) -> None:
    from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer

    app, window = bench_window._open_window()
    gui = threading.get_native_id()
    cpu: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter[str] = collections.Counter()

    def timed(owner, name: str, key: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            if threading.get_native_id() != gui:
                return inner(*args, **kwargs)
            t0 = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                cpu[key] += time.thread_time() - t0
                calls[key] += 1

        setattr(owner, name, wrapper)

    for owner, name, key in (
        (window.view3d, "update_runs", "redraw: 3-D view data"),
        (window.contour, "update_runs", "redraw: contour map data"),
        (window.loss_plot, "update_runs", "redraw: loss plot data (10 Hz)"),
        (window.readouts, "show_packet", "redraw: readouts (10 Hz)"),
        (window, "_on_packet", "packets in (trails grow)"),
        (window.view3d.gl_widget, "paintGL", "paint: 3-D view (GL)"),
        (window.contour, "paintEvent", "paint: contour map"),
        (window.loss_plot, "paintEvent", "paint: loss plot"),
    ):
        timed(owner, name, key)
    window._timer.timeout.disconnect()
    timed(window, "_redraw", "redraw: total")
    window._timer.timeout.connect(lambda: window._redraw())

    passes: list[list[str]] = []
    measuring = [False]

    class PassLog(QObject):
        def eventFilter(self, watched, event):  # Qt naming
            if not measuring[0]:
                return False
            if event.type() == QEvent.Type.UpdateRequest and watched is window:
                passes.append([])
            elif event.type() == QEvent.Type.Paint and passes:
                parent = watched.parent()
                name = type(watched).__name__
                if name == "QWidget" and parent is not None:
                    name = type(parent).__name__
                passes[-1].append(name)
            return False

    log = PassLog()
    app.installEventFilter(log)
    frames = [0]
    window.redrawn.connect(lambda: frames.__setitem__(0, frames[0] + 1))
    if speed > 0:
        window.playback.max_speed.setChecked(False)
        window.playback.speed.set_value(speed)
        window.worker.post("speed", speed)
    else:
        window.playback.max_speed.setChecked(True)
    window.set_playing(True)
    loop = QEventLoop()
    QTimer.singleShot(1000, loop.quit)  # settle first: trails and caches warm up
    loop.exec()
    cpu.clear()
    calls.clear()
    frames[0] = 0
    measuring[0] = True
    threads0, t0 = bench_window._thread_cpu(), time.perf_counter()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    threads1, wall = bench_window._thread_cpu(), time.perf_counter() - t0
    measuring[0] = False
    window.set_playing(False)
    n = max(frames[0], 1)
    print(
        f"load {os.getloadavg()[0]:.2f}, {wall:.1f} s, {frames[0]} frames ({frames[0] / wall:.1f}"
        f" fps), {len(passes)} paint passes ({len(passes) / n:.2f} per frame)"
    )
    print("GUI thread CPU ms per frame:")
    for key in sorted(cpu):
        print(f"  {key:34s} {1000 * cpu[key] / n:6.2f}   ({calls[key]} calls)")
    print("CPU ms per frame by thread:")
    for name, t in sorted(threads1.items(), key=lambda kv: -kv[1]):
        spent = t - threads0.get(name, 0.0)
        if spent > 0:
            print(f"  {name:34s} {1000 * spent / n:6.2f}   ({spent / wall:.0%} of a core)")
    kinds = collections.Counter(" + ".join(sorted(set(p))) or "(nothing)" for p in passes)
    print("paint passes, by what they painted:")
    for kind, count in kinds.most_common(8):
        print(f"  {count:5d}  {kind}")
    window.doc.undo_stack.setClean()
    window.close()


def render_only(seconds: float, speed: float) -> None:
    import subprocess

    from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer
    from PySide6.QtGui import QWindow

    from gdsim.ui.trails import TrailStore

    def run_for(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    app, window = bench_window._open_window()
    recorded = []
    window.worker.packetReady.connect(recorded.append)
    if speed > 0:
        window.playback.max_speed.setChecked(False)
        window.playback.speed.set_value(speed)
        window.worker.post("speed", speed)
    else:
        window.playback.max_speed.setChecked(True)
    window.set_playing(True)
    run_for(int(seconds * 1000))
    window.set_playing(False)
    run_for(300)
    window.worker.packetReady.disconnect(recorded.append)
    packets = [p for p in recorded if p.playing]
    window.reset()
    run_for(500)
    window.trails = TrailStore()  # the replay grows the trails again from step 0
    for thinner in window.view3d._thinners:
        thinner.clear()
    feed = iter(packets)

    def next_packet() -> None:
        packet = next(feed, None)
        if packet is not None:
            window.trails.take(packet.generation, packet.ids, packet.trails)
            window.packet = packet

    frames = [0]
    window.redrawn.connect(lambda: frames.__setitem__(0, frames[0] + 1))
    latencies: list[float] = []

    class KeyClock(QObject):
        def eventFilter(self, watched, event):  # Qt naming
            key_event = event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease)
            if key_event and isinstance(watched, QWindow):
                latencies.append(time.monotonic() * 1000 - event.timestamp())
            return False

    clock = KeyClock()
    app.installEventFilter(clock)
    window.activateWindow()
    feeder = QTimer()
    feeder.timeout.connect(next_packet)
    feeder.start(16)
    replay_s = min(len(packets) * 0.016, seconds) * 0.9
    injector = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("xinput.py")), str(replay_s - 0.3)]
    )
    cpu0, t0 = bench_window._thread_cpu(), time.perf_counter()
    run_for(int(replay_s * 1000))
    cpu1, wall = bench_window._thread_cpu(), time.perf_counter() - t0
    injector.wait(timeout=30)
    feeder.stop()
    n = max(frames[0], 1)
    lat = sorted(latencies)
    print(
        f"render only: load {os.getloadavg()[0]:.2f}, {len(packets)} recorded packets replayed"
        f" at up to 60/s, {frames[0] / wall:.1f} fps"
    )
    if lat:
        print(
            f"real-key latency: {len(lat)} events, p50 {lat[len(lat) // 2]:.1f} ms,"
            f" p99 {lat[min(len(lat) - 1, int(0.99 * len(lat)))]:.1f} ms"
        )
    print("CPU ms per frame by thread:")
    for name, t in sorted(cpu1.items(), key=lambda kv: -kv[1]):
        spent = t - cpu0.get(name, 0.0)
        if spent > 0:
            print(f"  {name:34s} {1000 * spent / n:6.2f}   ({spent / wall:.0%} of a core)")
    window.doc.undo_stack.setClean()
    window.close()


if __name__ == "__main__":
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = float(args[0]) if args else 6.0
    speed = float(args[1]) if len(args) > 1 else 6000.0
    (render_only if "--render-only" in flags else main)(seconds, speed)
