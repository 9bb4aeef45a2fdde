"""The simulation loop, run in a child process so it never holds the window's GIL.

It imports no Qt (the child starts faster, and the loop can be tested without a screen). The
window's `SimulationWorker` (gdsim.ui.worker) starts `main` in a "spawn" child and talks to it
over two one-way pipes: messages in (the worker's ``post`` tuples), replies out as tuples
``("packet", FramePacket)``, ``("snapshot", token, Simulation)``, ``("explained", ...)`` and
``("failed", text)``. Between batches of steps the loop applies the messages that arrived,
steps, and sends at most EMIT_HZ packets a second.

Each packet carries, per run, only the trail rows added since the previous packet (plus an
epoch that changes whenever that run restarts), so the window can keep whole trails without
ever copying a long history across the pipe.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, NamedTuple

import numpy as np

from gdsim.engine.explain import Internals, explain_run, internals
from gdsim.engine.simulation import Frame, RunSpec, Simulation, Status, StopRules

#: Packets per second at most: the screen's rate, so a fast engine never floods the window.
EMIT_HZ = 60.0
#: At full speed a batch aims at this much compute before the loop looks at its inbox again:
#: short enough that a click is answered within a frame.
BATCH_SECONDS = 0.004
#: At full speed the loop rests this long between batches: the machine may have only two cores,
#: and the window (and the X server) need one of them to draw what the engine computes.
REST_SECONDS = 0.001
#: At a set speed the loop wakes this often and takes the steps due (measured: 10 ms wakes sent
#: 41 packets/s at 6,000 steps/s, 4 ms wakes 50; the window draws what arrives).
PACED_WAKE_SECONDS = 0.004
#: The child's scheduling niceness: on a busy machine the window's drawing gets the CPU first.
NICENESS = 5


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


class Child(NamedTuple):
    """A started engine process and the window's ends of its two pipes."""

    process: BaseProcess
    to_child: Connection
    from_child: Connection


_prestarted: Child | None = None


def start() -> Child:
    """Spawn an engine child ("spawn": forking a process that runs Qt threads is unsafe)."""
    ctx = multiprocessing.get_context("spawn")
    child_in, to_child = ctx.Pipe(duplex=False)
    from_child, child_out = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=main,
        args=(child_in, child_out),
        name="gdsim-engine",
        daemon=True,  # never outlives the window, even if shutdown is not reached
    )
    process.start()
    # Only the child holds its ends now: its death then reads as EOF on ours.
    child_in.close()
    child_out.close()
    return Child(process, to_child, from_child)


def prestart() -> None:
    """Start the engine child now, for the next `take` (a no-op if one is waiting already).

    Starting Python, NumPy and SymPy in the child takes a few tenths of a second; begun before
    the window is built, it overlaps with building it instead of delaying the first frame.
    """
    global _prestarted
    if _prestarted is None or not _prestarted.process.is_alive():
        _discard(_prestarted)
        _prestarted = start()


def take() -> Child:
    """The prestarted child if there is a live one, else a new one."""
    global _prestarted
    child, _prestarted = _prestarted, None
    if child is not None and child.process.is_alive():
        return child
    _discard(child)
    return start()


def _discard(child: Child | None) -> None:
    """Close the pipes of a child that died before it was used."""
    if child is not None:
        child.to_child.close()
        child.from_child.close()


def main(inbox: Connection, outbox: Connection) -> None:
    """The child process: loop until told to quit or until the window's end of a pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C in a terminal is the window's to handle
    try:
        # The first surface to arrive is rebuilt from its formula: SymPy is needed at once, so
        # import it while the window is still being built and sends nothing.
        importlib.import_module("sympy")
        EngineLoop(outbox.send).run(inbox)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the window is gone: so is the reason to live
    finally:
        outbox.close()


class EngineLoop:
    """Owns the Simulation; everything it says goes through `send` as one tuple."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        self._send = send
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

    def run(self, inbox: Connection) -> None:
        last_emit = 0.0
        last_tick = time.perf_counter()
        while True:
            while inbox.poll():
                try:
                    message = inbox.recv()  # unpickling rebuilds surfaces: it may fail too
                except (EOFError, OSError):
                    raise
                except Exception as exc:
                    self._send(("failed", f"a message did not arrive whole: {exc}"))
                    traceback.print_exc()
                    continue
                if message[0] == "quit":
                    return
                try:
                    self._apply(message)
                except Exception as exc:  # a bad message must never kill the engine
                    self._send(("failed", f"{message[0]}: {exc}"))
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
                        self._step(sim, n)
            else:
                last_tick = now
                self._credit = 0.0
            now = time.perf_counter()
            if self._dirty and (now - last_emit >= 1.0 / EMIT_HZ or not self._playing):
                self._emit()
                last_emit = now
                self._dirty = False
                if self._serial == 1:
                    self._lower_priority()
            if not self._playing:
                inbox.poll(0.25)
            elif self._speed > 0:
                # Wake every few ms (or once a step, when slower) and do the steps due.
                inbox.poll(max(1.0 / self._speed, PACED_WAKE_SECONDS))
            else:
                inbox.poll(REST_SECONDS)

    def _lower_priority(self) -> None:
        """Yield the CPU to the window's drawing, once the first packet is sent.

        Not before: the window's first frame waits for that packet.
        """
        if hasattr(os, "nice"):
            with contextlib.suppress(OSError):
                os.nice(NICENESS)

    def _step(self, sim: Simulation, n: int) -> None:
        t0 = time.perf_counter()
        try:
            done = sim.step(n)
        except Exception as exc:  # e.g. MemoryError: pause, say so, live on
            self._playing = False
            self._send(("failed", f"stepping stopped: {type(exc).__name__}: {exc}"))
            traceback.print_exc()
            done = 0
        spent = time.perf_counter() - t0
        if spent > 0:
            self._rate = 0.8 * self._rate + 0.2 * done / spent if self._rate else done / spent
        self._tune_batch(spent)
        self._dirty = True

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
        packet = FramePacket(
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
        self._send(("packet", packet))

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
        elif kind == "generation":
            # A replacement for a crashed child: its next load must not reuse a generation.
            self._generation = int(args[0])
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
            # Export writes exactly what was simulated: the pipe delivers a private copy.
            self._send(("snapshot", args[0], sim))
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
        nxt = self._serial + 1

        def reply(rs: Any, ex: Any, why: str) -> None:
            self._send(("explained", token, run_id, rs, ex, why, nxt))

        if sim is None or run_id not in self._ids:
            reply(None, None, "no such run")
            return
        rs = sim.run_state(self._ids.index(run_id))
        if rs.state is None or rs.status is not Status.RUNNING:
            reply(rs, None, f"this run has {rs.status.value}: reset it to explain a step")
            return
        try:
            data = getattr(sim.surface, "data", None)
            ex = explain_run(rs, None if data is None else data.m)
        except ValueError as exc:
            reply(rs, None, str(exc))
            return
        reply(rs, ex, "")

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
