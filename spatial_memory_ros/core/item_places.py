"""What an item's remembered places say (core.item_memory keeps them): which place is usual, whether the item
left the place it was last seen at, when, and the newest time the item's state knows of."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .store import ItemState, PlaceRecord


def place(state: ItemState, place_id: int) -> PlaceRecord | None:
    """The item's place of that id, or None (forgotten, or -1: none)."""
    return next((p for p in state.places if p.place_id == place_id), None)


def left(state: ItemState, place: PlaceRecord) -> bool:
    """Whether place is where the item was last seen and has been seen empty since: it has left it."""
    return place.place_id == state.current.place_id and place.seen_empty > state.current.stamp


def usualness(state: ItemState, dwell_per_return_s: float) -> Callable[[PlaceRecord], float]:
    """A place's usualness (core.item_memory's docstring): its returns, its dwell at dwell_per_return_s a return,
    and half a return for the place the item was first seen at."""
    first = min(state.places, key=lambda p: (p.first_seen, p.place_id)).place_id
    return lambda p: p.returns + p.dwell_s / dwell_per_return_s + (0.5 if p.place_id == first else 0.0)


def ranking(state: ItemState, dwell_per_return_s: float) -> Callable[[PlaceRecord], tuple[float, float, int, int]]:
    """Sort key of this item's places by their own usualness, most usual first (ties: more dwell, more
    observations, older id)."""
    own = usualness(state, dwell_per_return_s)
    return lambda p: (-own(p), -p.dwell_s, -p.observations, p.place_id)


def spots(state: ItemState, dwell_per_return_s: float, near_m: float) -> list[list[PlaceRecord]]:
    """The item's places grouped into spots, most usual spot first, each spot's own most usual place first.

    An item whose position is noisy (depth at range, two cameras a little apart) leaves its time on one spot split
    over places a place radius apart; by each place's own share, a shorter stay elsewhere outranked them all. So
    the most usual place and every place within near_m of it (ItemMemory passes displaced_distance_m: an item that
    close is not displaced from it) make a spot, then the most usual place left and those near it, and so on; a
    spot ranks by its places' summed usualness (ties: its first place's own rank). Seeded by the most usual place,
    not by the place with the most usual neighbours: that one can be a single misread in the middle of a chain of
    places, and the answer would be its position."""
    key = ranking(state, dwell_per_return_s)
    own = usualness(state, dwell_per_return_s)
    rest = sorted(state.places, key=key)
    grouped: list[list[PlaceRecord]] = []
    while rest:
        close = {q.place_id for q in near(state, rest[0], near_m)}
        spot = [p for p in rest if p.place_id in close]
        grouped.append(spot)
        rest = [p for p in rest if all(p is not q for q in spot)]
    grouped.sort(key=lambda spot: (-sum(own(p) for p in spot), key(spot[0])))
    return grouped


def near(state: ItemState, place: PlaceRecord, near_m: float) -> list[PlaceRecord]:
    """The item's places whose centres are within near_m of place's (place itself always)."""
    return [q for q in state.places
            if q.place_id == place.place_id or float(np.linalg.norm(q.position - place.position)) <= near_m]


def gone(state: ItemState) -> float | None:
    """When the place of the last sighting was found empty since (the item had left it), or None."""
    at = place(state, state.current.place_id)
    return at.seen_empty if at is not None and left(state, at) else None


def latest(state: ItemState) -> float:
    """The newest stamp an item's state holds (its last sighting, or a later look that found a place empty)."""
    return max([state.current.stamp, *(p.seen_empty for p in state.places)])


def new_place(place_id: int, position: np.ndarray, orientation: np.ndarray, stamp: float) -> PlaceRecord:
    """A place made now: since the item's last stay, so a stay here is no return until the item stays elsewhere."""
    return PlaceRecord(place_id, position.copy(), orientation.copy(), 0.0, 1, stamp, stamp, since_stay=True)


def blend_quaternions(q_old: np.ndarray, q_new: np.ndarray, alpha: float) -> np.ndarray:
    """Normalised linear blend (a close approximation of the mean for nearby orientations)."""
    if float(np.dot(q_old, q_new)) < 0.0:  # q and -q are one rotation: blend on the same hemisphere
        q_new = -q_new
    q = (1.0 - alpha) * q_old + alpha * q_new
    return q / np.linalg.norm(q)
