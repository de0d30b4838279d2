"""Whether a camera's clock went back or jumped ahead, told apart from one frame stamped wrong.

A simulator restart or a looping bag sends every later stamp back; a camera driver's glitch sends one. Acting on
the first frame behind alone (tracks dropped, tf2's buffer cleared, remembered times moved back) turned a single
stale stamp into a reset, so a frame far behind is held as a candidate and the clock counts as gone back only
when the next frame agrees with it. A real restart costs one frame; a glitch costs the glitching frame. A frame
far ahead is held the same way: taken as the newest, one stamped 30 s ahead made every good frame after it look
30 s old, and the clock "went back" to them.
"""

from __future__ import annotations

import collections
import enum
import math
import statistics

# the pipeline refuses a frame up to this far behind the previous one as out of order; further back is a clock
# going back (core/pipeline.py imports it)
OUT_OF_ORDER_S = 1.0
# the confirming frame comes at or after the candidate and at most this much later (a slow camera at 1 Hz with
# frames lost on the way still confirms; a second glitch seconds later does not)
CONFIRM_WITHIN_S = 10.0
# a frame more than this after the newest is held too: a camera that stopped for longer (unplugged, restarted)
# loses one frame; a slow camera (0.5 Hz) or a stalled node loses none
JUMP_AHEAD_S = 10.0


class Stamp(enum.Enum):
    IN_ORDER = "in_order"  # at most OUT_OF_ORDER_S behind the newest stamp and JUMP_AHEAD_S after it, or confirmed
    HELD = "held"  # far from the newest stamp, the first such: drop it, the next frame decides
    WENT_BACK = "went_back"  # far behind, and the frame before was too, consistently: the clock went back


# the windows above grow to this many of the camera's own frame spacings (the median of the last few): a camera
# (or a node's rate_hz) slower than one frame per 10 s had every frame held, each one too far from the last
SPACINGS = 3.0
_GAPS_KEPT = 5


class ClockWatch:
    """Per camera: check(stamp) for each frame taken, in the order taken."""

    def __init__(self) -> None:
        self.newest = -math.inf  # s, the newest stamp accepted
        self._candidate: float | None = None  # s, the held frame's stamp
        self._gaps: collections.deque[float] = collections.deque(maxlen=_GAPS_KEPT)  # s, between accepted frames

    def spacing(self) -> float:
        """The camera's frame spacing (s): the median of the last gaps between frames taken; 0 before any."""
        return float(statistics.median(self._gaps)) if self._gaps else 0.0

    def check(self, stamp: float) -> Stamp:
        """How this frame's stamp (s) stands; a HELD frame is not counted as seen, a WENT_BACK one starts over."""
        candidate, self._candidate = self._candidate, None
        reach = SPACINGS * self.spacing()
        if self.newest == -math.inf or self.newest - OUT_OF_ORDER_S <= stamp <= self.newest + max(JUMP_AHEAD_S,
                                                                                                  reach):
            self._taken(stamp)
            return Stamp.IN_ORDER
        if candidate is not None and candidate <= stamp and (
                stamp <= candidate + max(CONFIRM_WITHIN_S, reach)
                or _same_spacing(self.newest, candidate, stamp)):
            back = stamp < self.newest  # the camera's spacing is kept: its clock moved, not its rate
            if not back:  # ahead: a clock stepped forward, nothing to undo; or a slow camera's spacing, now known
                self._gaps.append(stamp - candidate)
            self.newest = stamp
            return Stamp.WENT_BACK if back else Stamp.IN_ORDER
        self._candidate = stamp
        return Stamp.HELD

    def _taken(self, stamp: float) -> None:
        if math.isfinite(self.newest) and stamp > self.newest:
            self._gaps.append(stamp - self.newest)
        self.newest = max(self.newest, stamp)


def _same_spacing(newest: float, candidate: float, stamp: float) -> bool:
    """A held frame ahead and the next one as far after it (within a quarter): a slow camera's steady spacing, not
    one frame stamped wrong (the frames after a glitch come back near the newest)."""
    ahead, then = candidate - newest, stamp - candidate
    return ahead > 0 and abs(then - ahead) <= 0.25 * ahead

