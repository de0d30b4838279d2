"""How much of the memory questions the camera answered: the layout and retrieval queries whose truth it
showed, from the scene's truth alone (no method involved).

A layout query (where does ITEM usually live) is *seen* when the camera showed the item at its home
(at least min_item_px board pixels in view, the item on the floor within radius_m of its home) at some
time up to the query. A memory that never saw it there cannot know the home but by luck: that share is a
ceiling on layout accuracy for every method that learns from its camera.

A retrieval query (where is ITEM now) is *seen* when the camera showed the item where it lies now, since
it was put there. A method can be right without that (the return prior guesses that an item went back
home unseen), so for R@1 the share is not a strict ceiling; it says how many answers the camera gave
away and how many need a guess.

"Seen" means pixels in view, not a legible tag: a 12 px board far away counts as seen and no decoder
reads it. So a method may stay below these shares for want of resolution, not of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sim import ItemTruth, SimFrame
from .scores import Scores, ratio

MOVED_M = 0.05  # an item on the floor farther than this from where it was put down has been moved


def lies_on_floor(item: ItemTruth) -> bool:
    """Whether the item lies on the floor at a known place (not carried, not moved by nobody in view)."""
    return item.on_floor and bool(np.isfinite(item.position).all())


@dataclass(frozen=True)
class SeenScores(Scores):
    """Shares of the queries whose truth the camera had shown (module docstring); 0.0 where n is 0."""

    layout: float
    n_layout: int
    retrieval: float
    n_retrieval: int
    retrieval_hard: float = 0.0  # over the retrieval queries that need a memory (metrics.RetrievalScores)
    n_retrieval_hard: int = 0


class SeenTruth:
    """Follows each item's truth frame by frame; counts, per query, whether the camera had shown the answer.

    Call add() with every frame, then query() for each item the bench asks about (its layout query, and
    its retrieval query when the item lies on the floor), so both count the very same queries.
    """

    def __init__(self, radius_m: float, min_item_px: int) -> None:
        self.radius_m = float(radius_m)
        self.min_item_px = int(min_item_px)
        self._seen_home: set[str] = set()
        self._put_at: dict[str, np.ndarray] = {}  # item -> (2,) floor position it was put down at
        self._seen_here: set[str] = set()  # items shown at _put_at since they were put there
        self._n_layout = self._seen_layout = self._n_retrieval = self._seen_retrieval = 0
        self._n_hard = self._seen_hard = 0

    def add(self, frame: SimFrame) -> None:
        for name, item in frame.truth.items.items():
            if not lies_on_floor(item):
                self._put_at.pop(name, None)
                self._seen_here.discard(name)
                continue
            xy = np.asarray(item.position[:2], dtype=np.float64)
            put = self._put_at.get(name)
            if put is None or float(np.hypot(*(xy - put))) > MOVED_M:
                self._put_at[name] = xy
                self._seen_here.discard(name)
            if item.visible_px >= self.min_item_px:
                self._seen_here.add(name)
                if float(np.hypot(*(xy - item.home[:2]))) <= self.radius_m:
                    self._seen_home.add(name)

    def query(self, name: str, on_floor: bool, *, hard: bool = False) -> None:
        """Count one layout query about the item, and a retrieval query when it lies on the floor (hard: one
        that needs a memory, also counted apart)."""
        self._n_layout += 1
        self._seen_layout += name in self._seen_home
        if on_floor:
            self._n_retrieval += 1
            self._seen_retrieval += name in self._seen_here
            if hard:
                self._n_hard += 1
                self._seen_hard += name in self._seen_here

    def summary(self) -> SeenScores:
        return SeenScores(
            layout=ratio(self._seen_layout, self._n_layout),
            n_layout=self._n_layout,
            retrieval=ratio(self._seen_retrieval, self._n_retrieval),
            n_retrieval=self._n_retrieval,
            retrieval_hard=ratio(self._seen_hard, self._n_hard),
            n_retrieval_hard=self._n_hard,
        )
