"""Stays away from home in a scene script: the truth the return prior (core.return_prior) is fitted to."""

from __future__ import annotations

from dataclasses import dataclass

from .script import SceneScript


@dataclass(frozen=True)
class Stay:
    """An item put down somewhere other than its home."""

    item: str
    arrived_s: float  # put down there
    duration_s: float  # until it was put down at home again (returned) or until what the script knows ends
    returned: bool  # False: censored (moved on elsewhere first, or no move after it before the end)


def displaced_stays(script: SceneScript) -> list[Stay]:
    """Every stay away from home, measured from the put-down there to the put-down at home.

    The carry time home counts as away: an item in someone's hands is not at its usual place. A stay that
    ends with a move to another non-home place is censored at that put-down; one without any later move is
    censored at the end of the scene (shuffle returns are scripted even when they fall after the end).
    """
    out: list[Stay] = []
    end = script.preset.duration_s
    for i, events in enumerate(script.item_events):
        name = script.preset.items[i].name
        home = events[0][1]  # the first event is the item lying at home since -inf
        start: float | None = None
        for t, placement, _ in events[1:]:
            if placement < 0:
                continue  # picked up: being carried, the stay goes on until it is put down
            if start is not None:
                out.append(Stay(name, start, t - start, placement == home))
            start = None if placement == home else t
        if start is not None and end > start:
            out.append(Stay(name, start, end - start, False))
    return out
