"""The window's end of the simulation engine, which runs in a child process.

The engine (gdsim.ui.engine_process) steps tiny NumPy arrays thousands of times a second; in a
thread of the window's process it held Python's GIL for about half a core, and the window
waited for it at every crossing into Python while painting (17 fps instead of 35-46 at 6,000
steps/s, measured with tests/benchmarks/profile_window.py). In its own process it holds only
its own GIL.

`SimulationWorker` keeps the interface the window had with the thread: ``post(...)`` messages
and the signals below. ``post`` writes the message to the child's pipe (from the GUI thread);
the QThread only reads the child's replies and re-emits them as signals, so a slow child never
blocks the window. The child is started with the "spawn" method (forking a process that already
runs Qt threads is unsafe) by `engine_process.prestart` when the window starts being built, so
its start-up overlaps with building the window.

If the child dies, ``failed`` says so (the status bar shows it), a new child replaces it (at
most MAX_RESTARTS times) and ``restarted`` asks the window to send its scenario again; posts in
between are dropped. ``shutdown`` stops the child and the thread and never leaves either behind.
"""

from __future__ import annotations

import threading
from multiprocessing.connection import Connection
from typing import Any

from PySide6.QtCore import QThread, Signal

from gdsim.engine.simulation import RunSpec, StopRules
from gdsim.engine.surfaces import Surface
from gdsim.ui import engine_process
from gdsim.ui.engine_process import FramePacket, TrailChunk

__all__ = ["FramePacket", "SimulationWorker", "TrailChunk"]

#: How often the reading thread looks up from the pipe to see if it should stop.
POLL_SECONDS = 0.1
#: A crashed engine child is replaced this many times at most; after that the status bar says
#: to restart gdsim (an engine that keeps dying would otherwise restart forever).
MAX_RESTARTS = 3
#: Messages that set a standing preference of the engine: a replacement child gets them again.
STICKY = ("speed", "internals", "gd_steps")


class SimulationWorker(QThread):
    packetReady = Signal(object)
    snapshotReady = Signal(object, object)  # (token, a private copy of the Simulation)
    #: (token, run id, RunState, Explanation or None, error text or "", serial of the next
    #: packet: packets with a smaller serial were sent before the reply) for "explain"
    explained = Signal(object, object, object, object, str, int)
    failed = Signal(str)
    #: A new engine child replaced one that died: the window sends its scenario again.
    restarted = Signal()
    _childDied = Signal(str)  # from the reading thread to the GUI thread: (how it died)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        child = engine_process.take()
        self.process = child.process
        self._to_child = child.to_child
        self._from_child = child.from_child
        self._send_lock = threading.Lock()
        self._abort = threading.Event()
        self._dead = False
        self._sticky: dict[str, tuple[Any, ...]] = {}
        self._restarts = 0
        self._generation = 0  # of the last packet: a replacement child continues after it
        self._childDied.connect(self._on_child_died)

    # -- called from the GUI thread ---------------------------------------------------------
    def post(self, *message: Any) -> None:
        if message and message[0] in STICKY:
            self._sticky[message[0]] = message
        if self._dead or self._abort.is_set():
            return  # the engine is gone (already said): a message changes nothing
        try:
            with self._send_lock:
                self._to_child.send(message)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the child died: the reading thread reports it
        except Exception as exc:  # e.g. a surface that cannot be pickled: nothing was sent
            self.failed.emit(f"{message[0]}: {exc}")

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
        """Stop the child and the thread and wait for both: closing the window must never
        leave either running (a child that does not quit in time is terminated, then killed).

        The thread keeps reading (and dropping) what the child sends until the child is gone:
        a child blocked writing a large reply (a snapshot) into a full pipe could not otherwise
        hear "quit".
        """
        self._abort.set()
        try:
            with self._send_lock:
                self._to_child.send(("quit",))
        except Exception:
            pass  # already dead
        proc = self.process
        proc.join(timeout_ms / 1000)
        if proc.is_alive():
            proc.terminate()
            proc.join(1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
        thread_done = self.wait(timeout_ms)  # it ends at the pipe's end, the child being gone
        self._to_child.close()
        self._from_child.close()
        return thread_done and not proc.is_alive()

    # -- the thread -------------------------------------------------------------------------
    def run(self) -> None:
        pipe: Connection = self._from_child
        while True:
            try:
                if not pipe.poll(POLL_SECONDS):
                    if self._abort.is_set() and not self.process.is_alive():
                        return
                    continue
                reply = pipe.recv()
            except (EOFError, OSError):
                if not self._abort.is_set():
                    self._died()
                return
            if self._abort.is_set():
                continue  # shutting down: drain, so the child is never stuck writing
            kind, *args = reply
            if kind == "packet":
                self._generation = args[0].generation
                self.packetReady.emit(args[0])
            elif kind == "snapshot":
                self.snapshotReady.emit(args[0], args[1])
            elif kind == "explained":
                self.explained.emit(*args)
            elif kind == "failed":
                self.failed.emit(args[0])

    def _died(self) -> None:
        self._dead = True
        self.process.join(1.0)
        code = self.process.exitcode
        self._childDied.emit(
            f"exit code {code}" if code is None or code >= 0 else f"signal {-code}"
        )

    def _on_child_died(self, how: str) -> None:
        """In the GUI thread: replace the dead child (a few times at most) and say so."""
        if self._abort.is_set():
            return
        if self._restarts >= MAX_RESTARTS:
            self.failed.emit(
                f"the simulation engine stopped unexpectedly ({how}), {self._restarts + 1} "
                "times; save your work and restart gdsim to simulate again"
            )
            return
        self._restarts += 1
        self.wait()  # the reading thread ends right after telling us
        self._to_child.close()
        self._from_child.close()
        child = engine_process.start()
        self.process, self._to_child, self._from_child = child
        self._dead = False
        self.start()
        self.post("generation", self._generation)  # so the window drops the old trails
        for message in self._sticky.values():
            self.post(*message)
        self.failed.emit(
            f"the simulation engine stopped unexpectedly ({how}) and was restarted; "
            "the balls start again from their starts"
        )
        self.restarted.emit()
