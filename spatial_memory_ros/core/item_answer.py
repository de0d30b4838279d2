"""What `locate` answers for one item: its places ranked (core.item_places), the usual one, the current one (the
last sighting, the likeliest place it went when that was seen empty, or the usual one once the return prior says
it is back), and whether it is displaced. The rules are core.item_memory's module docstring; ItemMemory holds the
lock and the clock.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from . import item_places as places
from .config import MemoryConfig
from .return_prior import ReturnPrior
from .store import ItemState, PlaceRecord
from .types import ItemAnswer, ItemLocation


def answer(name: str, state: ItemState, config: MemoryConfig, prior: ReturnPrior | None, now: float) -> ItemAnswer:
    """The item's answer at `now` (s, the memory's clock): see ItemMemory.locate."""
    near_m = config.displaced_distance_m  # an item this close to a place is not displaced from it: one spot
    grouped = places.spots(state, config.dwell_per_return_s, near_m)
    ranked = [p for spot in grouped for p in spot]
    holds = {spot[0].place_id: spot for spot in grouped}  # a spot's first place stands for it
    total_dwell = sum(p.dwell_s for p in ranked)
    total_obs = sum(p.observations for p in ranked)

    def share(p: PlaceRecord) -> float:
        """The share of the item's dwell (of its observations while none has dwell): a spot's first place has its
        spot's (the places a noisy position split it into), any other place its own."""
        spot = holds.get(p.place_id, [p])
        if total_dwell > 0:
            return sum(q.dwell_s for q in spot) / total_dwell
        return sum(q.observations for q in spot) / total_obs if total_obs > 0 else 1.0 / len(ranked)

    def location(p: PlaceRecord) -> ItemLocation:
        return ItemLocation(
            position=p.position.copy(),
            orientation=p.orientation.copy(),
            confidence=share(p),
            last_seen=p.last_seen,
            observations=p.observations,
            dwell_s=p.dwell_s,
        )

    c = state.current
    at = places.place(state, c.place_id)
    current = ItemLocation(
        position=c.position.copy(),
        orientation=c.orientation.copy(),
        confidence=c.confidence,
        last_seen=c.stamp,
        observations=at.observations if at is not None else 0,
        dwell_s=at.dwell_s if at is not None else 0.0,
    )
    gone = places.gone(state)  # when it was found gone from its last place
    missing = gone is not None
    # where it went: not the spot it left (its last place, and any place near enough to be the same spot)
    left_spot = {q.place_id for q in places.near(state, at, near_m)} if gone is not None and at is not None else set()
    likely = [p for p in ranked if p.place_id not in left_spot and p.seen_empty < gone] if gone is not None else []
    if likely:
        current = location(likely[0])
    usual = location(ranked[0])
    back = 0.0 if missing else p_back(state, ranked[0], config, prior, now)
    if back > config.return_prior_min_p:
        current = replace(usual, position=usual.position.copy(), orientation=usual.orientation.copy(),
                          confidence=back)  # a prediction: its confidence is P(back)
    distance = float(np.linalg.norm(current.position - usual.position))
    return ItemAnswer(
        item=name,
        usual=usual,
        current=current,
        displaced=distance > config.displaced_distance_m,
        distance_m=distance,
        alternatives=[location(p) for p in ranked[1:]],
        missing=missing,
        current_inferred=bool(likely) or back > config.return_prior_min_p,
    )


def p_back(state: ItemState, usual: PlaceRecord, config: MemoryConfig, prior: ReturnPrior | None,
           now: float) -> float:
    """P(the item is back at its usual place) from the return prior; 0 without one or when not displaced."""
    c = state.current
    away = float(np.linalg.norm(c.position - usual.position)) > config.displaced_distance_m
    if prior is None or not away or c.place_id == usual.place_id:
        return 0.0
    arrived = c.arrived if math.isfinite(c.arrived) else c.stamp
    # The latest time it is known not to be back: its last sighting away, or a look at the usual place
    # that found it empty after that.
    not_back = max(c.stamp, usual.seen_empty)
    return prior.p_back(now - arrived, not_back - arrived)
