"""How one sighting moves an item's places on (centre, dwell, stays and returns, the bound on places): the rules of
core.item_memory's docstring as functions of the item's state, apart from the memory's lock, clock and store."""

from __future__ import annotations

import math

import numpy as np

from . import item_places as places
from .config import MemoryConfig
from .store import ItemState, LastObservation, PlaceRecord

# a sighting this much older than an emptiness at the same place means the clock went back; less is two cameras'
# frames handled out of order (one saw the item there at t, the other the place empty at t + 0.1)
CLOCK_BACK_S = 5.0


def add_sighting(
    state: ItemState | None, name: str, position: np.ndarray, orientation: np.ndarray, stamp: float,
    confidence: float, config: MemoryConfig, centre_weight_cap: int, *, followed: bool = False,
) -> ItemState:
    """The item's state after a validated sighting (position (3,) m map frame, unit quaternion xyzw, stamp s): a
    new state for the item's first (state None), else the state given, updated in place. centre_weight_cap:
    ItemMemory's; followed: a box the item follower moved."""
    if state is None:
        first = places.new_place(0, position, orientation, stamp)  # made since the last stay: there is none
        current = LastObservation(position, orientation, stamp, confidence, first.place_id, arrived=stamp)
        state = ItemState(name, [first], current, next_place_id=1)
        count_visit(state, first, config)
        return state
    place = nearest_place(state, position, config.place_radius_m)
    previous = state.current
    # Another camera's frame handled late: it adds to its place, but says nothing of where the item is now and
    # is no visit.
    late = handed_over_late(stamp, previous.stamp)
    if place is None:
        place = places.new_place(state.next_place_id, position, orientation, stamp)
        state.places.append(place)
        state.next_place_id += 1
    else:
        if not followed:  # a followed box says where the item is now, not where its place is
            alpha = 1.0 / (min(place.observations, centre_weight_cap) + 1)
            place.position = place.position + alpha * (position - place.position)
            place.orientation = places.blend_quaternions(place.orientation, orientation, alpha)
            place.observations += 1
        place.first_seen = min(place.first_seen, stamp)
        place.last_seen = max(place.last_seen, stamp)
        if place.seen_empty > stamp + CLOCK_BACK_S:
            # seen here, well before the time it was found empty: the clock went back (a bag played again, a
            # simulator restarted). What is seen now outranks that emptiness, or the item, in view at its
            # place, would stay "missing" until the clock passed the old time.
            place.seen_empty = -math.inf
        if stayed(state, previous, place, position, config):
            # Time between two sightings of the item staying counts as staying here, up to the gap cap (the
            # robot may have looked away for hours). Stamps going backwards add nothing.
            gap = stamp - previous.stamp
            place.dwell_s += min(max(gap, 0.0), config.max_dwell_gap_s)
    if not late:
        arrived = previous.arrived if previous.place_id == place.place_id else stamp
        state.current = LastObservation(position, orientation, stamp, confidence, place.place_id, arrived=arrived)
        count_visit(state, place, config)
    forget_extra_places(state, config)
    return state


def stayed(state: ItemState, previous: LastObservation, place: PlaceRecord, position: np.ndarray,
           config: MemoryConfig) -> bool:
    """Whether a sighting at place (at position) after the item's previous sighting shows it stayed: the two at one
    place, or no farther apart than displaced_distance_m (not displaced), and neither place seen empty in between.
    By one place alone, an item whose sightings straddle two places (position noise, two cameras a little apart)
    stayed nowhere: an hour still on a shelf, seen by two cameras 0.32 m apart, added no dwell at all."""
    before = places.place(state, previous.place_id)
    if before is None or max(before.seen_empty, place.seen_empty) >= previous.stamp:
        return False
    return before is place or float(np.linalg.norm(position - previous.position)) <= config.displaced_distance_m


def count_visit(state: ItemState, place: PlaceRecord, config: MemoryConfig) -> None:
    """Count a sighting at place towards a stay there (core.item_memory's docstring). The stay that completes makes
    place the last stay, and earns it a return when the place was known before the last stay and that one, still
    remembered, is more than displaced_distance_m away."""
    if place.place_id == state.settled:
        for p in state.places:  # it had not moved: what was seen elsewhere was not it
            p.stay_sightings = 0
        return
    place.stay_sightings += 1
    if place.stay_sightings < config.min_stay_sightings:
        return
    before = places.place(state, state.settled)
    if not place.since_stay and before is not None and (
        float(np.linalg.norm(before.position - place.position)) > config.displaced_distance_m
    ):
        place.returns += 1  # back at a place it had been at, after staying well away from it
    state.settled = place.place_id
    for p in state.places:  # a new stay: every count starts over, and every place it has been at is one it
        p.stay_sightings, p.since_stay = 0, False  # can come back to


def nearest_place(state: ItemState, position: np.ndarray, place_radius_m: float) -> PlaceRecord | None:
    distances = [float(np.linalg.norm(p.position - position)) for p in state.places]
    best = int(np.argmin(distances))
    return state.places[best] if distances[best] <= place_radius_m else None


def forget_extra_places(state: ItemState, config: MemoryConfig) -> None:
    # The last place by its own usualness goes, but never the place the item is at now, though a new place has
    # no dwell yet. By dwell alone, a rack the item comes back to on every patrol, seen for a moment each
    # time, went before a bench it once sat on for a minute, and "usual" moved to the bench. A place within
    # displaced_distance_m of another is one spot split by a noisy position: it is merged into the nearest, so
    # that the spot keeps its dwell and returns (forgetting the splinters one by one lost the spot's time).
    while len(state.places) > config.max_places_per_item:
        ranking = places.ranking(state, config.dwell_per_return_s)
        victim = max((p for p in state.places if p.place_id != state.current.place_id), key=ranking)
        state.places = [p for p in state.places if p.place_id != victim.place_id]
        spot = [q for q in places.near(state, victim, config.displaced_distance_m) if q is not victim]
        if spot:
            merge_into(min(spot, key=lambda q: float(np.linalg.norm(q.position - victim.position))), victim, state)


def merge_into(keep: PlaceRecord, gone: PlaceRecord, state: ItemState) -> None:
    """Fold place gone's time and counts into keep (whose centre stays: it is the better-observed one as a rule,
    and one splinter's pull would move it by a fraction of the spot's width anyway)."""
    keep.dwell_s += gone.dwell_s
    keep.returns += gone.returns
    keep.observations += gone.observations
    keep.first_seen, keep.last_seen = min(keep.first_seen, gone.first_seen), max(keep.last_seen, gone.last_seen)
    keep.since_stay = keep.since_stay and gone.since_stay  # known before the last stay if either was
    if state.settled == gone.place_id:
        state.settled = keep.place_id


def handed_over_late(stamp: float, sighting: float) -> bool:
    """Whether stamp is older than the item's last sighting by less than a clock going back (CLOCK_BACK_S): two
    cameras' frames handled out of order, not a bag played again."""
    return sighting - CLOCK_BACK_S <= stamp < sighting
