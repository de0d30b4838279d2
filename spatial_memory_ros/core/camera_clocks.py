"""Cameras that share one item memory must share one clock.

Each camera's clock is checked on its own (core.clock_watch), so two cameras whose stamps run 30 s apart (a
driver on its own clock, a camera not synced by PTP or chrony) each look fine, while the one memory they feed
sees its clock go back and forward every few seconds: it moved every remembered time back each time, and the
next sighting bridged the gap as dwell (an item watched for 32 s had 156 s of dwell). So each camera's stamps are
compared with a reference camera's: the first camera in the node's list that has had a frame lately. The other
cameras' frames stamped more than SKEW_S from it are dropped with the reason; the reference is never dropped for
it, so a bag that loops (every camera's stamps go back within a frame or two) costs the others a frame or two.
At the start a camera waits up to GRACE_S for the cameras before it in the list to send a first frame, so that
the one on another clock is not the first to reach the memory when it happens to start first.

Stamps are compared as offsets from the node's clock (which follows /clock with use_sim_time, so a bag played
faster or a simulator ahead of real time keeps the offsets still), and the reference's offset is allowed to have
aged by the time since its frame, so cameras at different rates compare alike.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

SKEW_S = 5.0  # the item memory takes a stamp this far behind its newest for a clock that went back
FRESH_S = 2.0  # a camera with no frame for longer is not a reference (stopped, unplugged); longer for slow rates
GRACE_S = 2.0  # how long a camera waits at the start for the cameras before it in the list


class ClockFault(NamedTuple):
    ref: int  # the reference camera
    skew_s: float  # how far this camera's stamp runs after the reference's (s); NaN = waiting for its first frame


class CameraClocks:
    """check() for each camera's frame, from the cameras' worker threads."""

    def __init__(self, cameras: int) -> None:
        self._offset = [math.nan] * cameras  # s, each camera's last stamp minus the node's clock then
        self._at = [-math.inf] * cameras  # s, the node's clock at that frame
        self._first = [math.nan] * cameras  # s, the node's clock at each camera's first frame
        self._lock = threading.Lock()

    def check(self, camera: int, stamp_s: float, now_s: float, fresh_s: float = FRESH_S) -> ClockFault | None:
        """Note camera's frame (stamp_s, at the node's time now_s); a fault when it disagrees with the reference
        by more than SKEW_S plus the age of the reference's frame, or when it is waiting for one; else None.
        fresh_s: how recent the reference's frame must be (the node gives a few frame periods; at least FRESH_S)."""
        with self._lock:
            if math.isnan(self._first[camera]):
                self._first[camera] = now_s
            earlier = range(camera)
            for ref in earlier:  # the first camera with a recent frame
                age = now_s - self._at[ref]
                if age <= max(fresh_s, FRESH_S):
                    skew = (stamp_s - now_s) - self._offset[ref]
                    if abs(skew) > SKEW_S + abs(age):
                        return ClockFault(ref, skew)
                    break
            else:
                silent = [ref for ref in earlier if math.isnan(self._first[ref])]
                if silent and now_s - self._first[camera] < GRACE_S:
                    return ClockFault(silent[0], math.nan)
            self._offset[camera], self._at[camera] = stamp_s - now_s, now_s
            return None
