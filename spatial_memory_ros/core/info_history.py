"""The camera_info that goes with an image: the one stamped with the image's stamp, not just the newest.

A zooming camera publishes an image and its camera_info with one stamp each frame. Paired by arrival, an image
could get the camera_info of the frame after it (the two topics arrive in either order), and with it another
focal length: a zoom seen one frame late, or early. Drivers that stamp camera_info 0, or with a clock of their
own, still get the newest.
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class InfoHistory(Generic[T]):
    """The last few (stamp, value) pairs of a topic, newest last; pick() finds the one for a stamp."""

    def __init__(self, size: int = 8) -> None:
        self._items: collections.deque[tuple[float, T]] = collections.deque(maxlen=size)

    def add(self, stamp_s: float, value: T) -> None:
        self._items.append((stamp_s, value))

    def pick(self, stamp_s: float) -> T | None:
        """The value stamped exactly stamp_s (the newest such); else the newest stamped no later than stamp_s,
        which is what a camera whose info lags its images, or repeats one stamp, had in force; else the newest
        (stamps from another clock: the pairing by arrival, as before); None when there is none."""
        if not self._items:
            return None
        before: T | None = None
        for stamp, value in reversed(self._items):
            if stamp == stamp_s:
                return value
            if before is None and stamp <= stamp_s:
                before = value
        return before if before is not None else self._items[-1][1]
