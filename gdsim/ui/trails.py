"""The window's copy of every run's trail, grown from the worker's packets.

Packets carry only new rows, so this keeps, per run id, arrays that double when full: appending
is amortised O(rows) and drawing reads a view of the filled part, with no copy per frame.
"""

from __future__ import annotations

import numpy as np

from gdsim.ui.worker import TrailChunk


class Trail:
    """Rows of (x, y, loss) in one array, so the 3-D view's (k, 3) trail is a view, not a copy."""

    __slots__ = ("_n", "_pts", "epoch")

    def __init__(self, epoch: int = -1) -> None:
        self.epoch = epoch
        self._n = 0
        self._pts = np.empty((256, 3))

    def __len__(self) -> int:
        return self._n

    @property
    def points(self) -> np.ndarray:
        """(k, 3): x, y, loss."""
        return self._pts[: self._n]

    @property
    def positions(self) -> np.ndarray:
        return self._pts[: self._n, :2]

    @property
    def losses(self) -> np.ndarray:
        return self._pts[: self._n, 2]

    def take(self, chunk: TrailChunk) -> None:
        if chunk.epoch != self.epoch:
            self.epoch, self._n = chunk.epoch, 0
        m = len(chunk.losses)
        if m == 0:
            return
        start = min(chunk.first, self._n)  # rows never arrive out of order; be safe anyway
        end = start + m
        if end > len(self._pts):
            pts = np.empty((max(end, 2 * len(self._pts)), 3))
            pts[: self._n] = self._pts[: self._n]
            self._pts = pts
        self._pts[start:end, :2] = chunk.positions
        self._pts[start:end, 2] = chunk.losses
        self._n = end


class TrailStore:
    """Trails by run id; a new generation (a new scenario) drops them all."""

    def __init__(self) -> None:
        self.generation = -1
        self._trails: dict[int, Trail] = {}

    def take(self, generation: int, ids: tuple[int, ...], chunks: tuple[TrailChunk, ...]) -> None:
        if generation != self.generation:
            self.generation = generation
            self._trails.clear()
        for run_id, chunk in zip(ids, chunks, strict=True):
            self._trails.setdefault(run_id, Trail()).take(chunk)
        for run_id in list(self._trails):
            if run_id not in ids:
                del self._trails[run_id]

    def get(self, run_id: int) -> Trail:
        return self._trails.get(run_id) or Trail()
