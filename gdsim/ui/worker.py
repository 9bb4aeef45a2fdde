"""The simulation thread.

One long-lived QThread owns the Simulation (Qt for Python's threads example is the pattern):
the window posts messages into a lock-guarded mailbox and wakes the thread; between batches of
steps the thread applies them, steps, and emits one immutable FramePacket. It never touches a
widget, and the window never touches the Simulation.

Each packet carries, per run, only the trail rows added since the previous packet (plus an
epoch that changes whenever that run restarts), so the window can keep whole trails without
ever copying a long history across threads.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QMutex, QMutexLocker, QThread, QWaitCondition, Signal

from gdsim.engine.explain import Internals, explain_run, internals
from gdsim.engine.simulation import Frame, RunSpec, Simulation, Status, StopRules
from gdsim.engine.surfaces import Surface

#: Packets per second at most: the screen's rate, so a fast engine never floods the event loop.
EMIT_HZ = 60.0
#: At full speed a batch aims at this much compute before the thread rests. The engine holds
#: the GIL while it steps, and the window waits for it at every crossing into Python while it
#: paints; short batches keep each wait short. Measured under Xvfb/llvmpipe, 8 balls flat
#: out, alternating runs on a loaded 2-core machine: 8 ms batches with 4 ms rests gave a
#: median 9.5 fps, 2 ms batches with 1 ms rests 14.6 fps at the same steps/s share.
BATCH_SECONDS = 0.002
#: At full speed the thread rests this long between batches (GIL free for the window).
REST_MS = 1
#: At a set speed the thread wakes this often and takes the steps due, so that one wake's
#: work (and the GIL with it) stays near BATCH_SECONDS at thousands of steps per second.
PACED_WAKE_SECONDS = 0.004


@dataclass(frozen=True)
class TrailChunk:
    epoch: int  # changes whenever the run restarts: the window then drops the old trail
    first: int  # step index of the first row
    positions: np.ndarray  # (m, 2)
    losses: np.ndarray  # (m,)


@dataclass(frozen=True)
class FramePacket:
    generation: int  # changes when the simulation is rebuilt (a new scenario)
    ids: tuple[int, ...]  # the window's run ids, in simulation order
    frame: Frame
    trails: tuple[TrailChunk, ...]
    playing: bool
    steps_per_second: float  # measured engine rate while playing
    # Per run, the adaptive optimizers' per-axis accumulators and effective learning rates
    # (None for a run without one); empty unless a view asked for them ("internals" message).
    internals: tuple[Internals | None, ...] = ()
    # (n_runs, 2) −lr·∇f at the point the last step started from: the plain gradient-descent
    # counterpart of ``frame.deltas`` (zeros before a run's first step); None unless asked
    # for ("gd_steps" message).
    gd_steps: np.ndarray | None = None
    serial: int = 0  # counts packets: tells a reply to a message from packets sent before it


class SimulationWorker(QThread):
    packetReady = Signal(object)
    snapshotReady = Signal(object, object)  # (token, a deep copy of the Simulation)
    #: (token, run id, RunState, Explanation or None, error text or "", serial of the next
    #: packet: packets with a smaller serial were sent before the reply) for "explain"
    explained = Signal(object, object, object, object, str, int)
    failed = Signal(str)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._mutex = QMutex()
        self._wake = QWaitCondition()
        self._inbox: deque[tuple[Any, ...]] = deque()
        self._abort = False
        # Owned by the thread from here on.
        self._sim: Simulation | None = None
        self._ids: list[int] = []
        self._epochs: dict[int, int] = {}
        self._sent: dict[int, int] = {}
        self._specs: dict[int, RunSpec] = {}
        self._generation = 0
        self._playing = False
        self._speed = 60.0  # steps per second; 0 = as fast as possible
        self._budget = 500
        self._stop = StopRules()
        self._batch = 16
        self._credit = 0.0
        self._rate = 0.0
        self._dirty = False
        self._want_internals = False
        self._want_gd_steps = False
        self._serial = 0

    # -- called from the GUI thread ---------------------------------------------------------
    def post(self, *message: Any) -> None:
        with QMutexLocker(self._mutex):
            self._inbox.append(message)
            self._wake.wakeOne()

    def load(
        self,
        surface: Surface,
        ids: list[int],
        specs: list[RunSpec],
        budget: int,
        stop: StopRules,
        seed: int,
    ) -> None:
        self.post("load", surface, list(ids), [s.copy() for s in specs], budget, stop, seed)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop the thread and wait for it: closing the window must never leave it running."""
        with QMutexLocker(self._mutex):
            self._abort = True
            self._wake.wakeOne()
        return self.wait(timeout_ms)

    # -- the thread -------------------------------------------------------------------------
    def run(self) -> None:
        last_emit = 0.0
        last_tick = time.perf_counter()
        while True:
            with QMutexLocker(self._mutex):
                if self._abort:
                    return
                messages = list(self._inbox)
                self._inbox.clear()
            for message in messages:
                try:
                    self._apply(message)
                except Exception as exc:  # a bad message must never kill the thread
                    self.failed.emit(f"{message[0]}: {exc}")
                    traceback.print_exc()
                self._dirty = True
            now = time.perf_counter()
            sim = self._sim
            if self._playing and sim is not None:
                left = self._budget - self._clock(sim)
                if left <= 0 or not any(s is Status.RUNNING for s in sim.statuses()):
                    self._playing = False
                    self._dirty = True
                else:
                    n = min(self._steps_due(now - last_tick), left)
                    last_tick = now
                    if n:
                        t0 = time.perf_counter()
                        try:
                            done = sim.step(n)
                        except Exception as exc:  # e.g. MemoryError: pause, say so, live on
                            self._playing = False
                            self._dirty = True
                            self.failed.emit(f"stepping stopped: {type(exc).__name__}: {exc}")
                            traceback.print_exc()
                            done = 0
                        spent = time.perf_counter() - t0
                        if spent > 0:
                            self._rate = (
                                0.8 * self._rate + 0.2 * done / spent
                                if self._rate
                                else done / spent
                            )
                        self._tune_batch(spent)
                        self._dirty = True
            else:
                last_tick = now
                self._credit = 0.0
            now = time.perf_counter()
            if self._dirty and (now - last_emit >= 1.0 / EMIT_HZ or not self._playing):
                self._emit()
                last_emit = now
                self._dirty = False
            with QMutexLocker(self._mutex):
                if self._abort:
                    return
                if not self._inbox:
                    if not self._playing:
                        self._wake.wait(self._mutex, 250)
                    elif self._speed > 0:
                        # Wake every few ms (or once a step, when slower) and do the steps
                        # due: short spells of holding the GIL, so the window's painting
                        # never waits long for it (see BATCH_SECONDS).
                        wait_s = max(1.0 / self._speed, PACED_WAKE_SECONDS)
                        wait_ms = max(1, int(wait_s * 1000))
                        self._wake.wait(self._mutex, wait_ms)
                    else:
                        # Flat out: still leave the GIL to the GUI thread between batches, or
                        # every Python <-> Qt crossing while painting waits a switch interval.
                        self._wake.wait(self._mutex, REST_MS)

    def _steps_due(self, elapsed: float) -> int:
        if self._speed <= 0:
            return self._batch
        self._credit = min(self._credit + self._speed * elapsed, self._speed * 0.25 + 1)
        n = int(self._credit)
        self._credit -= n
        return n

    def _tune_batch(self, spent: float) -> None:
        if self._speed > 0:
            return
        if spent < BATCH_SECONDS / 2:
            self._batch = min(self._batch * 2, 1 << 16)
        elif spent > BATCH_SECONDS * 2:
            self._batch = max(self._batch // 2, 1)

    def _emit(self) -> None:
        sim = self._sim
        if sim is None:
            return
        chunks = []
        for i, run_id in enumerate(self._ids):
            k = self._sent.get(run_id, 0)
            h = sim.history_since(i, k)
            self._sent[run_id] = k + len(h.losses)
            chunks.append(TrailChunk(self._epochs[run_id], h.first, h.positions, h.losses))
        frame = sim.frame()
        self._serial += 1
        self.packetReady.emit(
            FramePacket(
                self._generation,
                tuple(self._ids),
                frame,
                tuple(chunks),
                self._playing,
                self._rate if self._playing else 0.0,
                self._internals(sim, frame) if self._want_internals else (),
                self._gd_steps(sim, frame) if self._want_gd_steps else None,
                self._serial,
            )
        )

    @staticmethod
    def _internals(sim: Simulation, frame: Frame) -> tuple[Internals | None, ...]:
        out: list[Internals | None] = []
        for i, spec in enumerate(sim.runs):
            state = sim.optimizer_state(i)
            if state is None:
                out.append(None)
                continue
            try:
                got = internals(
                    spec.optimizer, spec.params, state, frame.gradients[i], float(frame.lrs[i])
                )
            except ValueError:
                got = None
            out.append(got)
        return tuple(out)

    @staticmethod
    def _gd_steps(sim: Simulation, frame: Frame) -> np.ndarray:
        out = np.zeros((sim.n_runs, 2))
        for i in range(sim.n_runs):
            k = int(frame.step[i])
            if k > 0:
                h = sim.history_since(i, k - 1)
                if len(h.lrs):
                    out[i] = -h.lrs[0] * h.gradients[0]
        out.flags.writeable = False
        return out

    def _restarted(self, run_id: int) -> None:
        self._epochs[run_id] = self._epochs.get(run_id, 0) + 1
        self._sent[run_id] = 0

    def _stop_rules(self) -> StopRules:
        # The step budget is the playback clock's limit, not a stop rule: a run that reaches it
        # is paused, not finished, so raising the budget lets it roll on from where it is.
        return StopRules(None, self._stop.grad_tol, self._stop.loss_tol)

    def _clock(self, sim: Simulation) -> int:
        return max((sim.steps_taken(i) for i in range(sim.n_runs)), default=0)

    def _apply(self, message: tuple[Any, ...]) -> None:
        kind, *args = message
        sim = self._sim
        if kind == "load":
            surface, ids, specs, budget, stop, seed = args
            self._budget, self._stop = budget, stop
            self._sim = Simulation(surface, specs, seed=seed, stop=self._stop_rules())
            self._ids = list(ids)
            self._specs = dict(zip(ids, specs, strict=True))
            self._generation += 1
            for run_id in ids:
                self._restarted(run_id)
            self._playing = False
            self._rate = 0.0
        elif kind == "play":
            self._playing = bool(args[0])
            self._credit = 1.0  # the first step happens at once
        elif kind == "speed":
            self._speed = float(args[0])
            self._batch = 16
        elif kind == "step" and sim is not None:
            # A single step is a deliberate request: it may go past the budget.
            self._playing = False
            sim.step(int(args[0]))
        elif kind == "reset" and sim is not None:
            self._playing = False
            sim.reset()
            for run_id in self._ids:
                self._restarted(run_id)
        elif kind == "budget":
            self._budget = int(args[0])
        elif kind == "stop_rules" and sim is not None:
            self._stop = args[0]
            sim.set_stop(self._stop_rules())
        elif kind == "surface" and sim is not None:
            sim.set_surface(args[0])
            for run_id in self._ids:
                self._restarted(run_id)
        elif kind == "add_run" and sim is not None:
            run_id, spec = args
            sim.add_run(spec.copy())
            self._ids.append(run_id)
            self._specs[run_id] = spec.copy()
            self._restarted(run_id)
        elif kind == "remove_run" and sim is not None:
            run_id = args[0]
            index = self._ids.index(run_id)
            sim.remove_run(index)
            del self._ids[index]
            for table in (self._specs, self._sent, self._epochs):
                table.pop(run_id, None)
        elif kind == "reset_run" and sim is not None:
            run_id = args[0]
            sim.reset_run(self._ids.index(run_id))
            self._restarted(run_id)
        elif kind == "snapshot" and sim is not None:
            # Export writes exactly what was simulated: a private copy the GUI thread may read.
            self.snapshotReady.emit(args[0], copy.deepcopy(sim))
        elif kind == "run" and sim is not None:
            self._sync_run(sim, *args)
        elif kind == "internals":
            self._want_internals = bool(args[0])
        elif kind == "gd_steps":
            self._want_gd_steps = bool(args[0])
        elif kind == "explain":
            token, run_id = args
            self._explain(sim, token, run_id)
        elif kind == "apply_step" and sim is not None:
            # Take exactly the explained step: only if the run is still where it was explained.
            run_id, steps = args
            self._playing = False
            i = self._ids.index(run_id) if run_id in self._ids else -1
            if i < 0 or sim.steps_taken(i) != steps or sim.status(i) is not Status.RUNNING:
                raise ValueError("the explained step is out of date; explain it again")
            sim.step(1)

    def _explain(self, sim: Simulation | None, token: Any, run_id: int) -> None:
        """Pause, and answer with the run's next step told in stages (or why it cannot be)."""
        self._playing = False
        if sim is None or run_id not in self._ids:
            self.explained.emit(token, run_id, None, None, "no such run", self._serial + 1)
            return
        rs = sim.run_state(self._ids.index(run_id))
        if rs.state is None or rs.status is not Status.RUNNING:
            why = f"this run has {rs.status.value}: reset it to explain a step"
            self.explained.emit(token, run_id, rs, None, why, self._serial + 1)
            return
        try:
            data = getattr(sim.surface, "data", None)
            ex = explain_run(rs, None if data is None else data.m)
        except ValueError as exc:
            self.explained.emit(token, run_id, rs, None, str(exc), self._serial + 1)
            return
        self.explained.emit(token, run_id, rs, ex, "", self._serial + 1)

    def _sync_run(self, sim: Simulation, run_id: int, spec: RunSpec) -> None:
        """Bring one run to `spec`, keeping position and optimizer state wherever that is honest."""
        i = self._ids.index(run_id)
        old = self._specs[run_id]
        if spec.optimizer != old.optimizer:
            sim.set_optimizer(i, spec.optimizer, spec.params)
        elif spec.params != old.params:
            sim.set_params(i, spec.params)
        if spec.schedule != old.schedule:
            sim.set_schedule(i, spec.schedule)
        if spec.noise != old.noise:
            sim.set_noise(i, spec.noise)
        if spec.batch_size != old.batch_size:
            sim.set_batch_size(i, spec.batch_size)
        if tuple(spec.start) != tuple(old.start):
            sim.set_start(i, spec.start)
            self._restarted(run_id)
        self._specs[run_id] = spec.copy()
