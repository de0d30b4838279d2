"""Where each item usually is, where it is now, and whether it has been displaced.

Each item keeps a few places (clusters of its observations, place_radius_m wide). "Usual" is the place the
item keeps coming back to: a place earns a return each time the item stays there after its last stay was
elsewhere, and dwell time (while it is seen staying) counts as returns at dwell_per_return_s, so an hour on
the desk outweighs five minutes on the sofa, however often the sofa was observed. A stay is min_stay_sightings
sightings at a place with none at the last stay in between (the place not seen empty meanwhile), and it is a
return only to a place the item had been at before its last stay. A tag misread as the item is a sighting and
moves "current", but a glimpse or two between sightings at the last stay counts towards no stay (a sighting at
the last stay starts every count over: the item had not moved), and a place made since the last stay earns
nothing however often it is misread; a patrol passing an item really put back sees it many times. The place
it was first seen at counts half a return more: where things are when a space is first mapped is, more often
than not, where they belong (it decides while nothing else does, and breaks ties after).

One spot, several places: a noisy position (depth at range) or two cameras a little apart split the item's time on
one spot over places a place radius apart. So the item stays while two sightings in a row are no farther apart than
displaced_distance_m (the dwell goes to the newer one's place); places are grouped into spots, each the most usual
place left and the places within displaced_distance_m of it (core.item_places.spots), a spot ranks by its places'
summed usualness and its first place stands for it (usual, with the spot's share of the dwell as confidence); a
missing item is not guessed anywhere on the spot it left, and a place forgotten past max_places_per_item is merged
into the nearest place of its spot, if it has one.

Negative evidence: the pipeline reports places that were in view, decodable and unoccluded while the
item was not seen (observe_absent). After absent_after_checks such frames the place is "seen empty"; when
that happens to the place of the last sighting, the item is missing, and "current" becomes the likeliest
place it went: the most usual remembered place not seen empty since (current_inferred). A memory that only
keeps the last sighting would keep pointing at the empty place.

"Since" is since the last time the item was known to be somewhere: its last sighting, and once that place
has been seen empty (_left), that moment. A place seen empty while the item still sat at its last place
says nothing about where it went afterwards (it is most often put back where it came from), so such a place
is a candidate again. Places stay checked after they are seen empty, so that a place kept in view keeps a
current "seen empty" time and is not mistaken for one last looked at long ago.

Return prior (memory.return_prior, off by default): when the item was last seen away from its usual place
and nothing has been seen of it since, the time since it was first seen there says how likely it is to have
been put back (core.return_prior, learned from training scenes). Once P(back) exceeds return_prior_min_p,
"current" becomes the usual place (current_inferred, not missing). Time is the memory's clock: the latest
stamp it has been given (observations, absence checks, advance()).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from types import TracebackType

import numpy as np

from . import item_answer
from . import item_places as places
from .config import MemoryConfig, PipelineConfig
from .errors import BadInputError, SpatialMemoryError, UnknownItemError
from .item_stays import CLOCK_BACK_S, add_sighting, handed_over_late
from .return_prior import ReturnPrior, load_return_prior
from .store import ItemState, MemoryStore
from .types import ItemAnswer, ItemObservation, PlaceToCheck

logger = logging.getLogger(__name__)

_MAX_NAMES_IN_ERROR = 10
# After a frame's write to the store failed (a full disk, another program holding a write lock), frames wait this
# long (s) before they try again; what changed stays in RAM meanwhile and is written with the next try that works.
_RETRY_WRITE_S = 10.0


class ItemMemory:
    """Dwell-weighted item places, restored from and committed to an optional MemoryStore.

    Thread-safe: every public method holds one re-entrant lock, so the node's services can query while the
    processing thread observes. ``close()`` also closes the store.

    Args:
        config: radii, displacement distance, dwell gap cap and place bound.
        store: persistence; None keeps everything in memory only.
        centre_weight_cap: a place centre is a running mean of its observations, but an observation never
            weighs less than 1/(cap+1): with a large cap the centre is steadier against noise, with a small
            one it follows faster when the item is put back slightly differently. Counted in observations,
            so the drift time scales with the observation rate (500 at 10 Hz: about a minute).
    """

    def __init__(
        self, config: MemoryConfig, store: MemoryStore | None = None, *, centre_weight_cap: int = 500
    ) -> None:
        PipelineConfig(memory=config).validate()  # the memory checks live there, once
        if centre_weight_cap < 1:
            raise BadInputError("centre_weight_cap must be >= 1")
        self._config = config
        self._store = store
        self._centre_weight_cap = centre_weight_cap
        self._lock = threading.RLock()
        self._items: dict[str, ItemState] = {}
        self._dirty: set[str] = set()  # changed in memory but not yet committed (a commit failed)
        self._misses: dict[str, dict[int, int]] = {}  # item -> place_id -> checks without the item, in RAM
        self._checked_since: set[str] = set()  # items whose "seen empty" times moved on in RAM only (save, close)
        self._write_error: str | None = None  # why the frames' last write failed; None once one works
        self._retry_at = -math.inf  # time.monotonic() from which frames try to write again
        self._moved_back_at = -math.inf  # time.monotonic() of the last _clock_went_back
        self._last_shift: float | None = None  # what it moved every time by (s, negative)
        self._old_clock_now = -math.inf  # "now" just before the clock last went back (s, the old clock)
        self._warned_at = -math.inf  # time.monotonic() of the last "back and forth" warning
        self._prior: ReturnPrior | None = load_return_prior(config.return_prior_path) if config.return_prior else None
        for name, state in (store.load() if store is not None else {}).items():
            if state.places:
                self._items[name] = state
            else:
                logger.warning("stored item %r has no places; ignoring it", name)
        # After a restart the clock starts where it was stored (store.clock), or at the last thing remembered if
        # that is later, until the next frame moves it on. Not stored, it fell back to the last sighting, and with
        # the return prior on a restarted node (or `spatial-memory locate`) answered an item it had just answered
        # "back home" at its last place.
        self._now = max([places.latest(state) for state in self._items.values()]
                        + [store.clock if store is not None else -math.inf])
        self._clock_written = self._now  # the clock as last committed

    @property
    def write_error(self) -> str | None:
        """Why the last write of a frame's changes to the store failed, while they wait in RAM (written with the
        next write that works: every _RETRY_WRITE_S); None when every change is on disk as far as it knows."""
        with self._lock:
            return self._write_error

    @property
    def unwritten(self) -> int:
        """How many items have changes in RAM only because a write failed."""
        with self._lock:
            return len(self._dirty) if self._write_error is not None else 0

    @property
    def store(self) -> MemoryStore | None:
        """The store given at construction (e.g. to read ``moved_aside_to``), or None."""
        return self._store

    # ---- updates ---------------------------------------------------------------------------------------

    def advance(self, stamp: float) -> None:
        """Tell the memory the time of the newest frame (s), seen items or not: "now" for the return prior.
        A stamp more than CLOCK_BACK_S before "now" means the clock went back (_clock_went_back); non-finite
        stamps are ignored. The clock is committed with the next frame's changes, or on its own every
        _CLOCK_WRITE_S of it, so a kill loses at most that much of it."""
        if math.isfinite(stamp):
            with self._lock:
                self._tick(float(stamp))
                if self._store is not None and abs(self._now - self._clock_written) >= _CLOCK_WRITE_S:
                    self._flush_frame()

    def _tick(self, stamp: float) -> float:
        """Move "now" on to stamp; the stamp to use: a late frame of the old clock just after the clock went back
        (another camera's, handled after the first frame of the new clock) is moved as the remembered times were.
        Kept as it was, it lifted "now" back to the old clock, and the next frame of the new one moved every time
        back a second time, the new clock's sightings with them (and 300 s of dwell, the gap cap, came of it)."""
        shift = self._last_shift
        # a late frame is near where the old clock was; every stamp above now + CLOCK_BACK_S was taken for one, and
        # the new clock's frames more than 5 s apart (a slow camera, a bag replayed fast) were all moved back
        if (shift is not None and time.monotonic() - self._moved_back_at < _CLOCK_BACK_REST_S
                and max(self._now, self._old_clock_now) - CLOCK_BACK_S < stamp
                and self._now + CLOCK_BACK_S < stamp <= self._now - shift + CLOCK_BACK_S):
            return stamp + shift
        if stamp < self._now - CLOCK_BACK_S:
            if time.monotonic() - self._moved_back_at >= _CLOCK_BACK_REST_S:
                self._old_clock_now = self._now
                self._last_shift = self._clock_went_back(stamp)
                self._moved_back_at = time.monotonic()
            elif time.monotonic() - self._warned_at >= _CLOCK_BACK_REST_S:
                # back and forth: cameras on two clocks. Moving everything each frame would lose all the times
                self._warned_at = time.monotonic()
                logger.warning("stamps went back %.0f s again within %.0f s: cameras on different clocks, or a "
                               "bag looping that fast? Remembered times stay as they are", self._now - stamp,
                               _CLOCK_BACK_REST_S)
        self._now = max(self._now, stamp)
        return stamp

    def _clock_went_back(self, stamp: float) -> float:
        """The clock went back (a bag played again into the same memory, a simulator restarted, a node with a memory
        of wall-clock times started on a simulator's clock): every remembered time moves back by one amount, so that
        all of it lies before stamp, and the memory goes on in the order things were sensed. Left on the old clock,
        an item taken away stayed "not missing" until the clock passed its old last sighting (a look at its empty
        place counted only when later than that), and the first place seen on the new clock was the item's
        "first seen" place, its usual one after three glimpses. Intervals (dwell, time since arrival) are kept;
        times from before the new clock's start read as unknown (0) in messages."""
        shift = stamp - _CLOCK_BACK_GAP_S - self._now  # returned: the amount every time moved by
        for state in self._items.values():
            for p in state.places:
                p.first_seen, p.last_seen = p.first_seen + shift, p.last_seen + shift
                p.seen_empty += shift
            c = state.current
            state.current = replace(c, stamp=c.stamp + shift, arrived=c.arrived + shift)
        self._dirty |= set(self._items)  # written with the frame's changes
        logger.warning("the clock went back %.1f s: the %d remembered item(s)' times moved back with it",
                       -(stamp - self._now), len(self._items))
        self._now = stamp
        return shift

    def observe(self, observations: Sequence[ItemObservation]) -> None:
        """Add confirmed observations (positions m map frame, stamps s), then commit them in one transaction.

        The whole batch is validated first, so a bad observation raises BadInputError and changes nothing.
        """
        with self._lock:
            checked = [(_checked(o), o.followed) for o in observations]
            for (name, position, orientation, stamp, confidence), followed in checked:
                stamp = self._tick(stamp)
                self._misses.pop(name, None)  # seen: its earlier misses were occlusions or noise
                self._items[name] = add_sighting(self._items.get(name), name, position, orientation, stamp, confidence,
                                                 self._config, self._centre_weight_cap, followed=followed)
                self._dirty.add(name)
            self._flush_frame()

    def places_to_check(self) -> list[PlaceToCheck]:
        """Places whose emptiness would tell something: every place of every item, but the place of the last
        sighting once it has been seen empty (that moment is when the item was last known to be somewhere).
        Places already seen empty are checked too, so that "seen empty" stays the last time they were."""
        with self._lock:
            return [
                PlaceToCheck(name, p.place_id, p.position.copy(), p.orientation.copy())
                for name, state in self._items.items()
                for p in state.places
                if not places.left(state, p)
            ]

    def observe_absent(self, checked: Sequence[tuple[str, int]], stamp: float) -> None:
        """(item, place_id) pairs that were in view, decodable and unoccluded at `stamp` without the item.

        A place becomes seen empty after config.absent_after_checks such reports since the item was last
        seen (any sighting of the item clears its count); after that, each further report moves its "seen
        empty" time on (kept in RAM until the item's next commit: a lost update only makes the evidence look
        older). Unknown items and places are ignored (the memory may have moved on since the check was
        planned). Commits what changed.
        """
        needed = self._config.absent_after_checks
        if needed <= 0 or not math.isfinite(stamp):
            return
        with self._lock:
            stamp = self._tick(float(stamp))
            for name, place_id in checked:
                state = self._items.get(name)
                place = places.place(state, place_id) if state else None
                if state is None or place is None or places.left(state, place):
                    continue
                if place.seen_empty >= state.current.stamp:  # seen empty since the sighting: still empty
                    before, place.seen_empty = place.seen_empty, max(place.seen_empty, float(stamp))
                    gone = places.gone(state)
                    if gone is not None and before < gone <= place.seen_empty:
                        self._dirty.add(name)  # now empty since the item left: no longer a candidate (locate)
                    elif place.seen_empty > before:
                        self._checked_since.add(name)
                    continue
                if place.place_id == state.current.place_id and handed_over_late(stamp, state.current.stamp):
                    continue  # a look older than the sighting there (another camera's frame, handled late)
                counts = self._misses.setdefault(name, {})
                counts[place_id] = counts.get(place_id, 0) + 1
                if counts[place_id] >= needed:
                    del counts[place_id]
                    place.seen_empty = max(float(stamp), state.current.stamp)
                    place.stay_sightings = 0  # it left: a visit there starts over
                    self._dirty.add(name)
            self._flush_frame()

    def _flush_frame(self) -> None:
        """_flush() for a frame's changes: a store that cannot be written keeps them in RAM (write_error says why,
        a warning is logged when the reason first comes or changes) and frames try again only every
        _RETRY_WRITE_S, so that a full disk or another program's write lock neither stops the frames' tracks and
        masks nor holds the services for the store's busy timeout at every frame."""
        if self._write_error is not None and time.monotonic() < self._retry_at:
            return
        try:
            self._flush()
        except BadInputError:
            raise
        except SpatialMemoryError as exc:
            if str(exc) != self._write_error:
                logger.warning("%s; %d item(s) kept in RAM, written when the store can be written (tried again "
                               "every %.0f s)", exc, len(self._dirty), _RETRY_WRITE_S)
            self._write_error, self._retry_at = str(exc), time.monotonic() + _RETRY_WRITE_S

    def _flush(self, *, everything: bool = False) -> None:
        """Commit the changed items; everything: also those whose "seen empty" times moved on in RAM only."""
        if everything:
            self._dirty |= self._checked_since
        if self._store is None or (not self._dirty and self._now == self._clock_written):
            return
        self._store.commit([self._items[name] for name in sorted(self._dirty) if name in self._items], clock=self._now)
        self._clock_written = self._now
        if self._write_error is not None:
            logger.warning("spatial memory store written again: the %d item(s) kept in RAM are on disk",
                           len(self._dirty))
        self._write_error = None
        self._checked_since -= self._dirty
        self._dirty.clear()  # only after success: a failed commit is retried with the next one

    def reset(self) -> None:
        """Forget every item, in memory and in the store. The store first: if it cannot be written
        (SpatialMemoryError), both keep every item, rather than the items coming back at the next start."""
        with self._lock:
            if self._store is not None:
                self._store.reset()
            self._items.clear()
            self._dirty.clear()
            self._write_error = None  # the store was just written: nothing waits in RAM
            self._misses.clear()
            self._checked_since.clear()
            self._now = -math.inf  # a bag replayed after a reset starts the clock again (the return prior's "now")
            self._clock_written = -math.inf  # the store's reset forgot its clock too

    def save(self) -> None:
        """Commit the "seen empty" times kept in RAM and make the store's file self-contained (WAL checkpoint);
        commits are durable without it."""
        with self._lock:
            if self._store is not None:
                self._flush(everything=True)
                self._store.checkpoint()

    def close(self) -> None:
        """Commit anything pending (the "seen empty" times kept in RAM too) and close the store."""
        with self._lock:
            if self._store is not None:
                try:
                    self._flush(everything=True)
                finally:
                    self._store.close()

    def __enter__(self) -> ItemMemory:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- queries ---------------------------------------------------------------------------------------

    def items(self) -> list[str]:
        """Names of every item ever observed (since the last reset), sorted."""
        with self._lock:
            return sorted(self._items)

    def list_all(self) -> list[ItemAnswer]:
        """``locate`` for every item, sorted by name."""
        with self._lock:
            return [self.locate(name) for name in self.items()]

    def locate(self, item: str, *, now: float | None = None) -> ItemAnswer:
        """Usual place (most returns and dwell, see the module docstring), current place, and whether the
        item is displaced from usual.

        current is the last sighting; when that place has been seen empty since, it is the most usual place
        not seen empty since the sighting (current_inferred), or still the last sighting if there is none
        (missing either way). With the return prior on, a last sighting away from the usual place gives way
        to the usual place once P(back) at `now` (s; default the memory's clock) exceeds return_prior_min_p
        (current_inferred, not missing; its confidence is P(back)). Confidence of a place is its share of
        the item's total dwell (of its observations while no place has dwell yet). Raises BadInputError
        for an empty name and UnknownItemError for an unseen item.
        """
        with self._lock:
            name = item.strip()
            if not name:
                raise BadInputError("item name is empty")
            state = self._items.get(name)
            if state is None:
                raise UnknownItemError(self._unknown_message(name))
            return item_answer.answer(name, state, self._config, self._prior, self._now if now is None else now)

    def _unknown_message(self, name: str) -> str:
        known = self.items()
        if not known:
            return f"unknown item {name!r}: no items have been seen yet"
        shown = ", ".join(known[:_MAX_NAMES_IN_ERROR])
        more = f" (and {len(known) - _MAX_NAMES_IN_ERROR} more)" if len(known) > _MAX_NAMES_IN_ERROR else ""
        return f"unknown item {name!r}; known items: {shown}{more}"


def _checked(obs: ItemObservation) -> tuple[str, np.ndarray, np.ndarray, float, float]:
    """Validated (name, (3,) position m, (4,) unit quaternion, stamp s, confidence) or BadInputError."""
    name = obs.item.strip()
    if not name:
        raise BadInputError("observation has an empty item name")
    try:
        name.encode("utf-8")  # the store's text; a lone surrogate ("bad\udcff") failed its commits from then on
    except UnicodeEncodeError:
        raise BadInputError(f"observation has an item name that is not valid text: {name!r}") from None
    position = np.asarray(obs.position, dtype=np.float64).reshape(-1)
    if position.shape != (3,) or not np.all(np.isfinite(position)):
        raise BadInputError(f"observation of {name!r}: position must be 3 finite numbers, got {obs.position}")
    q = np.asarray(obs.orientation, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(q)) if q.shape == (4,) else math.nan
    if not (math.isfinite(norm) and norm > 1e-9):
        raise BadInputError(f"observation of {name!r}: orientation must be a non-zero quaternion xyzw")
    if not math.isfinite(obs.stamp):
        raise BadInputError(f"observation of {name!r}: stamp must be finite, got {obs.stamp}")
    if not 0.0 <= obs.confidence <= 1.0:
        raise BadInputError(f"observation of {name!r}: confidence must be in [0, 1], got {obs.confidence}")
    return name, position.copy(), q / norm, float(obs.stamp), float(obs.confidence)


# The clock is committed on its own (frames without a change) once it moved this far (s) since last committed.
_CLOCK_WRITE_S = 10.0
# After the clock went back, the memory's latest time is put this far (s) before the new clock's stamp.
_CLOCK_BACK_GAP_S = 1.0
# The clock goes back at most once in this long (s, monotonic): more often, it is two clocks, not a restart.
_CLOCK_BACK_REST_S = 10.0

