"""ItemMemory: dwell-weighted usual place, current observation, displacement, persistence."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from spatial_memory_ros.core.config import MemoryConfig
from spatial_memory_ros.core.errors import BadInputError, SpatialMemoryError, UnknownItemError
from spatial_memory_ros.core.item_memory import ItemMemory
from spatial_memory_ros.core.store import MemoryStore
from spatial_memory_ros.core.types import ItemAnswer, ItemObservation

CONFIG = MemoryConfig(
    db_path="", place_radius_m=0.3, displaced_distance_m=0.5, max_dwell_gap_s=300.0, max_places_per_item=16
)
A = (0.0, 0.0, 0.0)
B = (2.0, 0.0, 0.0)


Point = tuple[float, float, float]


def obs(x: float | Point, t: float, item: str = "mug", conf: float = 1.0) -> ItemObservation:
    position = np.array(x if isinstance(x, tuple) else (x, 0.0, 0.0), dtype=np.float64)
    return ItemObservation(item=item, position=position, stamp=t, confidence=conf)


def stay(at: Point, start: float, duration: float, every: float = 10.0) -> list[ItemObservation]:
    """Observations of the mug at one spot every ``every`` s from ``start`` for ``duration`` s (inclusive)."""
    return [obs(at, start + k * every) for k in range(int(duration // every) + 1)]


def n_places(answer: ItemAnswer) -> int:
    return 1 + len(answer.alternatives)


@pytest.fixture(params=["no_store", "memory_store"])
def memory(request: pytest.FixtureRequest) -> Iterator[ItemMemory]:
    store = MemoryStore(":memory:") if request.param == "memory_store" else None
    mem = ItemMemory(CONFIG, store)
    yield mem
    mem.close()


def test_short_displacement_does_not_move_usual(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=3600.0))  # one hour at A
    memory.observe(stay(B, start=3610.0, duration=300.0))  # then five minutes at B

    answer = memory.locate("mug")
    np.testing.assert_allclose(answer.usual.position, A, atol=1e-9)
    np.testing.assert_allclose(answer.current.position, B, atol=1e-9)
    assert answer.displaced
    assert answer.distance_m == pytest.approx(2.0)
    assert answer.usual.dwell_s == pytest.approx(3600.0)
    assert answer.current.dwell_s == pytest.approx(300.0)  # the first sighting at B adds no dwell
    assert answer.current.last_seen == pytest.approx(3910.0)
    assert answer.usual.confidence == pytest.approx(3600.0 / 3900.0)
    assert [alt.dwell_s for alt in answer.alternatives] == pytest.approx([300.0])

    memory.observe([obs(A, 3920.0)])  # put back
    answer = memory.locate("mug")
    assert not answer.displaced
    np.testing.assert_allclose(answer.current.position, A, atol=1e-9)
    np.testing.assert_allclose(answer.usual.position, A, atol=1e-9)


@pytest.mark.parametrize(
    ("gap", "dwell"),
    [(10.0, 10.0), (299.0, 299.0), (300.0, 300.0), (10_000.0, 300.0), (0.0, 0.0), (-5.0, 0.0)],
)
def test_dwell_gap_is_capped_and_never_negative(memory: ItemMemory, gap: float, dwell: float) -> None:
    memory.observe([obs(A, 100.0)])
    memory.observe([obs(A, 100.0 + gap)])
    answer = memory.locate("mug")
    assert answer.usual.dwell_s == pytest.approx(dwell)
    assert answer.usual.observations == 2


def test_moving_between_places_adds_no_dwell_to_either(memory: ItemMemory) -> None:
    memory.observe([obs(A, 0.0), obs(B, 10.0), obs(A, 20.0)])
    answer = memory.locate("mug")
    assert answer.usual.dwell_s == 0.0 and answer.alternatives[0].dwell_s == 0.0
    # no dwell anywhere: ties go to more observations, confidence is the observation share
    np.testing.assert_allclose(answer.usual.position, A, atol=1e-9)
    assert answer.usual.confidence == pytest.approx(2 / 3)
    assert answer.alternatives[0].confidence == pytest.approx(1 / 3)


@pytest.mark.parametrize(("offset", "places"), [(0.0, 1), (0.2, 1), (0.29, 1), (0.31, 2), (1.0, 2)])
def test_place_merging_within_radius(memory: ItemMemory, offset: float, places: int) -> None:
    memory.observe([obs(0.0, 0.0), obs(offset, 10.0)])
    answer = memory.locate("mug")
    assert n_places(answer) == places
    if places == 1:
        np.testing.assert_allclose(answer.usual.position, (offset / 2, 0.0, 0.0), atol=1e-9)  # running mean


@pytest.mark.parametrize(("cap", "drifts"), [(10, True), (100_000, False)])
def test_weight_cap_lets_a_place_drift_to_where_the_item_is_put_back(cap: int, drifts: bool) -> None:
    memory = ItemMemory(CONFIG, centre_weight_cap=cap)
    memory.observe([obs(0.0, float(t)) for t in range(1000)])
    memory.observe([obs(0.2, float(t)) for t in range(1000, 1200)])  # put back 20 cm off
    answer = memory.locate("mug")
    assert n_places(answer) == 1
    assert (answer.usual.position[0] > 0.19) == drifts


def test_single_observation() -> None:
    memory = ItemMemory(CONFIG)
    memory.observe([obs(B, 5.0, conf=0.7)])
    answer = memory.locate("mug")
    assert answer.usual.confidence == 1.0
    assert answer.current.confidence == pytest.approx(0.7)
    assert answer.alternatives == []
    assert not answer.displaced and answer.distance_m == 0.0
    assert answer.current.observations == 1 and answer.current.dwell_s == 0.0


def test_number_of_places_is_bounded_and_the_least_usual_is_forgotten() -> None:
    """By least dwell alone, the first place (usual by its half return) was forgotten, and "usual" moved."""
    memory = ItemMemory(replace(CONFIG, max_places_per_item=3))
    t = 0.0
    dwell_by_x = {1.0: 50.0, 2.0: 500.0, 3.0: 20.0, 4.0: 200.0, 5.0: 100.0}
    for x, dwell in dwell_by_x.items():
        memory.observe(stay((x, 0.0, 0.0), start=t, duration=dwell))
        t += dwell + 10.0
    memory.observe([obs(6.0, t)])  # a brand-new place with no dwell yet is kept: the item is there now

    answer = memory.locate("mug")
    assert n_places(answer) == 3
    xs = [answer.usual.position[0]] + [alt.position[0] for alt in answer.alternatives]
    assert xs == pytest.approx([1.0, 2.0, 6.0])  # 3, 4 and 5 had the least dwell when each new place came
    assert answer.current.position[0] == 6.0 and answer.current.dwell_s == 0.0


def test_first_place_then_dwell_rank_places_with_dwell_share(memory: ItemMemory) -> None:
    t = 0.0
    for x, dwell in [(1.0, 100.0), (2.0, 300.0), (3.0, 50.0), (4.0, 150.0)]:
        memory.observe(stay((x, 0.0, 0.0), start=t, duration=dwell))
        t += dwell + 10.0
    answer = memory.locate("mug")
    # No place has a return: the first place's half return (1800 s at the default 3600 s per return)
    # outweighs 300 s of dwell elsewhere; the others rank by dwell.
    assert answer.usual.position[0] == pytest.approx(1.0)
    assert [alt.position[0] for alt in answer.alternatives] == pytest.approx([2.0, 4.0, 3.0])
    assert [alt.dwell_s for alt in answer.alternatives] == pytest.approx([300.0, 150.0, 50.0])
    assert answer.usual.confidence == pytest.approx(100.0 / 600.0)
    assert [alt.confidence for alt in answer.alternatives] == pytest.approx([0.5, 0.25, 50 / 600])


def test_a_longer_stay_elsewhere_does_not_move_usual(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=60.0))
    memory.observe(stay(B, start=100.0, duration=600.0, every=60.0))  # ten times longer, but once
    answer = memory.locate("mug")
    assert answer.usual.position[0] == pytest.approx(A[0]) and answer.displaced


def test_the_place_it_comes_back_to_is_usual(memory: ItemMemory) -> None:
    C = (0.0, 3.0, 0.0)
    memory.observe(stay(B, start=0.0, duration=300.0, every=30.0))  # first seen away from home, for long
    memory.observe(stay(A, start=400.0, duration=30.0))
    assert memory.locate("mug").usual.position[0] == pytest.approx(B[0])  # nothing says otherwise yet
    memory.observe(stay(C, start=500.0, duration=300.0, every=30.0))
    memory.observe(stay(A, start=900.0, duration=30.0))  # back at A: a return
    answer = memory.locate("mug")
    assert answer.usual.position[0] == pytest.approx(A[0]) and not answer.displaced


def test_hours_of_dwell_outweigh_the_first_place() -> None:
    memory = ItemMemory(replace(CONFIG, max_dwell_gap_s=600.0))
    memory.observe(stay(A, start=0.0, duration=60.0))
    memory.observe(stay(B, start=100.0, duration=2 * 3600.0, every=300.0))
    assert memory.locate("mug").usual.position[0] == pytest.approx(B[0])  # 2 h > half a return (1800 s)


# ---- one spot split over places: a noisy position, two cameras a little apart ---------------------------

def test_two_cameras_a_place_radius_apart_still_count_the_stay(memory: ItemMemory) -> None:
    """Each frame two cameras see the mug 0.32 m apart (more than place_radius_m, less than displaced_distance_m):
    its sightings alternate between two places, and by one place alone it stayed nowhere (an hour, no dwell)."""
    memory.observe([obs(5.0, 0.0)])  # first seen elsewhere: that place has the first place's half return
    for k in range(360):
        memory.observe([obs(0.0, 100.0 + 10 * k), obs(0.32, 100.0 + 10 * k)])
    answer = memory.locate("mug")
    assert n_places(answer) == 3
    assert answer.usual.position[0] < 0.5 and not answer.displaced  # an hour there outweighs the first place
    assert answer.usual.dwell_s + answer.alternatives[0].dwell_s == pytest.approx(3590.0)


def test_a_sighting_farther_than_displaced_distance_is_no_stay(memory: ItemMemory) -> None:
    memory.observe([obs(0.0, 0.0), obs(0.6, 10.0), obs(0.0, 20.0)])  # 0.6 m > displaced_distance_m
    answer = memory.locate("mug")
    assert answer.usual.dwell_s == 0.0 and answer.alternatives[0].dwell_s == 0.0


def noisy_stay(rng: np.random.Generator, at: Point, start: float, duration: float, sigma: float,
               every: float = 5.0) -> list[ItemObservation]:
    """stay() with Gaussian position noise (sigma m) on x and y: depth at range."""
    return [obs(tuple(np.array(at) + rng.normal(0.0, sigma, 3) * (1.0, 1.0, 0.0)), start + k * every)
            for k in range(int(duration // every) + 1)]


def test_an_hour_at_a_noisy_spot_outweighs_a_shorter_clean_stay(memory: ItemMemory) -> None:
    """Seen with 0.12 m of noise, an hour on the shelf splits into several places a place radius apart; by its own
    share none outweighed 40 min sharply seen on the desk, and "usual" was the desk. The places near enough to be
    one spot (displaced_distance_m) count together, and the usual place's confidence is the spot's share."""
    rng = np.random.default_rng(0)
    C, desk = (6.0, 0.0, 0.0), (3.0, 0.0, 0.0)
    memory.observe([obs(C, 0.0)])  # first seen once, elsewhere
    memory.observe(noisy_stay(rng, A, 100.0, 3600.0, sigma=0.12))
    memory.observe(stay(desk, start=3800.0, duration=2400.0))
    answer = memory.locate("mug")
    assert n_places(answer) >= 4  # the shelf's time is split: what made this a defect
    assert np.linalg.norm(answer.usual.position - np.array(A)) < 0.3
    assert answer.displaced  # on the desk now
    assert answer.usual.confidence == pytest.approx(3600.0 / 6000.0, abs=0.03)


def test_a_missing_item_is_not_guessed_at_the_spot_it_left(memory: ItemMemory) -> None:
    """The mug left a noisy shelf whose time is split over places; the place of its last sighting was seen empty.
    The shelf's other places are that spot too: the guess is elsewhere."""
    rng = np.random.default_rng(1)
    memory.observe(stay(B, start=0.0, duration=60.0))
    memory.observe(noisy_stay(rng, A, 100.0, 3600.0, sigma=0.12))  # the shelf is usual
    seen = memory.locate("mug").current.position
    last = min(memory.places_to_check(), key=lambda c: float(np.linalg.norm(c.position - seen)))  # its place
    for k in range(CONFIG.absent_after_checks):  # only that place was in view
        memory.observe_absent([("mug", last.place_id)], 3800.0 + 0.1 * k)
    answer = memory.locate("mug")
    assert answer.missing and answer.current_inferred
    assert answer.current.position[0] == pytest.approx(B[0])


def test_a_misread_between_two_places_does_not_become_usual(memory: ItemMemory) -> None:
    """Held-out warehouse static 100, the pallet at the far edge of a still camera's view: five minutes read at
    y 9.51, then as it was picked up a few reads at 10.11 (0.6 m on) and one at 9.85, between the two. Ranked by the
    usualness within displaced_distance_m of each place, the single read in the middle counted both neighbours and
    was answered as usual (0.75 m from the pallet's home; layout 1.000 -> 0.889 on that run). A spot is seeded by
    its most usual place."""
    memory.observe([obs((9.0, 9.51, -0.3), float(t)) for t in range(0, 321)])  # the run's positions
    memory.observe([obs((9.02, 10.11, -0.75), 320.9 + 0.1 * k) for k in range(4)])
    memory.observe([obs((9.01, 9.85, -0.57), 321.3)])
    answer = memory.locate("mug")
    assert n_places(answer) == 3
    assert answer.usual.position[1] == pytest.approx(9.51)


def test_places_forgotten_past_the_bound_fold_into_their_spot() -> None:
    """Past max_places_per_item the least usual place went, with its time: a noisy spot lost its splinters' dwell,
    and a stay elsewhere became usual. A place within displaced_distance_m of another is merged into it."""
    memory = ItemMemory(replace(CONFIG, max_places_per_item=4))
    rng = np.random.default_rng(2)
    memory.observe([obs(6.0, 0.0)])
    memory.observe(noisy_stay(rng, A, 100.0, 3600.0, sigma=0.15))
    memory.observe(stay(B, start=3800.0, duration=2400.0))
    answer = memory.locate("mug")
    assert n_places(answer) == 4
    spot = [p for p in (answer.usual, *answer.alternatives) if np.linalg.norm(p.position - np.array(A)) < 0.6]
    assert sum(p.dwell_s for p in spot) > 3000.0  # the hour, less the gaps between splinters
    assert np.linalg.norm(answer.usual.position - np.array(A)) < 0.3


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_empty_name_is_bad_input(memory: ItemMemory, name: str) -> None:
    with pytest.raises(BadInputError, match="item name is empty"):
        memory.locate(name)


def test_unknown_item_lists_known_items(memory: ItemMemory) -> None:
    with pytest.raises(UnknownItemError, match="no items have been seen"):
        memory.locate("mug")
    memory.observe([obs(A, 0.0, item="mug"), obs(B, 0.0, item="keys")])
    with pytest.raises(UnknownItemError, match="'wallet'; known items: keys, mug$"):
        memory.locate("wallet")


def test_unknown_item_message_is_truncated(memory: ItemMemory) -> None:
    memory.observe([obs(A, 0.0, item=f"item{k:02d}") for k in range(25)])
    with pytest.raises(UnknownItemError) as info:
        memory.locate("wallet")
    message = str(info.value)
    assert "item00, item01" in message and "item09" in message and "item10" not in message
    assert message.endswith("(and 15 more)")


def test_items_and_list_all(memory: ItemMemory) -> None:
    memory.observe([obs(A, 0.0, item="mug"), obs(B, 0.0, item="keys"), obs(A, 1.0, item=" mug ")])
    assert memory.items() == ["keys", "mug"]
    assert [a.item for a in memory.list_all()] == ["keys", "mug"]
    assert memory.locate(" mug ").usual.observations == 2


@pytest.mark.parametrize(
    "bad",
    [
        ItemObservation("mug", np.array([np.nan, 0.0, 0.0]), 1.0),
        ItemObservation("mug", np.array([0.0, 0.0]), 1.0),
        ItemObservation("mug", np.zeros(3), float("inf")),
        ItemObservation("mug", np.zeros(3), 1.0, confidence=1.5),
        ItemObservation("mug", np.zeros(3), 1.0, orientation=np.zeros(4)),
        ItemObservation(" ", np.zeros(3), 1.0),
    ],
)
def test_bad_observation_rejects_the_whole_batch(memory: ItemMemory, bad: ItemObservation) -> None:
    with pytest.raises(BadInputError):
        memory.observe([obs(A, 0.0, item="keys"), bad])
    assert memory.items() == []


def _assert_same_answers(a: list[ItemAnswer], b: list[ItemAnswer]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert (x.item, x.displaced, x.distance_m) == (y.item, y.displaced, pytest.approx(y.distance_m))
        places_x, places_y = [x.usual, x.current, *x.alternatives], [y.usual, y.current, *y.alternatives]
        for lx, ly in zip(places_x, places_y, strict=True):
            np.testing.assert_allclose(lx.position, ly.position)
            np.testing.assert_allclose(lx.orientation, ly.orientation)
            assert (lx.confidence, lx.last_seen, lx.observations, lx.dwell_s) == (
                pytest.approx(ly.confidence),
                ly.last_seen,
                ly.observations,
                pytest.approx(ly.dwell_s),
            )


def test_usual_place_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    with ItemMemory(CONFIG, MemoryStore(db)) as yesterday:
        yesterday.observe(stay(A, start=0.0, duration=3600.0))
        yesterday.observe(stay(B, start=3610.0, duration=300.0))
        yesterday.observe([obs(A, 4000.0, item="keys"), obs((0.1, 0.0, 0.0), 4000.0, item="keys", conf=0.5)])
        before = yesterday.list_all()

    with ItemMemory(CONFIG, MemoryStore(db)) as today:
        _assert_same_answers(today.list_all(), before)
        today.observe([obs(B, 4010.0)])  # still at B: dwell keeps accumulating at the restored place
        answer = today.locate("mug")
        assert answer.current.dwell_s == pytest.approx(400.0)
        np.testing.assert_allclose(answer.usual.position, A, atol=1e-9)
        assert n_places(answer) == 2  # place ids survived the restart: no duplicate place at B


def test_a_store_that_cannot_be_written_keeps_the_frames_changes_in_ram_and_takes_them_when_it_can(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk or another program's write lock: a frame's write raised before, and the node dropped the whole
    frame (its tracks and mask too) as a bug, every frame, each after the store's 5 s wait under the lock the
    services take."""
    db = tmp_path / "memory.db"
    memory = ItemMemory(CONFIG, MemoryStore(db))
    store = memory.store
    assert store is not None
    tries: list[int] = []
    real_commit = store.commit

    def failing_commit(states: object, clock: object = None) -> None:
        tries.append(1)
        raise SpatialMemoryError("cannot write spatial memory store: database or disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(store, "commit", failing_commit)
        memory.observe([obs(A, 0.0, item="mug")])  # no exception: the frame goes on
        assert memory.write_error is not None and "disk is full" in memory.write_error
        assert memory.unwritten == 1 and memory.locate("mug").current is not None  # answered from RAM
        memory.observe([obs(B, 1.0, item="keys")])
        assert len(tries) == 1  # the next frames do not try again before _RETRY_WRITE_S
        assert memory.unwritten == 2
        with pytest.raises(SpatialMemoryError, match="disk is full"):
            memory.save()  # asked for explicitly: the caller hears it (the save_memory service answers false)
        ahead = [11.0]  # s the memory's clock runs ahead: past _RETRY_WRITE_S (10 s)
        patch.setattr("spatial_memory_ros.core.item_memory.time",
                      SimpleNamespace(monotonic=lambda: time.monotonic() + ahead[0]))
        memory.observe([obs(B, 2.0, item="keys")])
        assert len(tries) == 3  # save() was the second
        patch.setattr(store, "commit", real_commit)
        ahead[0] = 22.0
        memory.observe([obs(B, 3.0, item="keys")])  # written: keys, and the mug left over
    assert memory.write_error is None and memory.unwritten == 0
    memory.close()
    with ItemMemory(CONFIG, MemoryStore(db)) as reopened:
        assert reopened.items() == ["keys", "mug"]
        reopened_store = reopened.store
        assert reopened_store is not None
        with monkeypatch.context() as patch:
            patch.setattr(reopened_store, "commit", failing_commit)
            reopened.observe([obs(A, 5.0, item="mug")])
        assert reopened.write_error is not None
        reopened.reset()  # the store written (emptied): nothing waits in RAM, no error to report
        assert reopened.write_error is None and reopened.unwritten == 0


def test_a_write_lock_held_by_another_program_holds_a_frame_for_at_most_a_second(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        memory.observe([obs(A, 0.0)])
        other = sqlite3.connect(db, isolation_level=None, timeout=0)
        other.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            memory.observe([obs(A, 1.0)])
            assert 0.5 < time.monotonic() - started < 3.0  # the busy timeout (1 s), not the 5 s it was
            assert memory.write_error is not None and "locked" in memory.write_error
        finally:
            other.close()


@pytest.mark.parametrize(
    "bad", [{"place_radius_m": 0.0}, {"max_places_per_item": 0}, {"max_dwell_gap_s": -1.0}, {"min_stay_sightings": 0}]
)
def test_bad_config_is_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(BadInputError, match=next(iter(bad))):
        ItemMemory(replace(CONFIG, **bad))


def test_a_reset_the_store_refuses_keeps_every_item(tmp_path: Path) -> None:
    """The store is reset first: had the items been dropped from RAM first, they would come back at the next
    start although the caller saw them gone."""
    db = tmp_path / "memory.db"
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        memory.observe([obs(A, 0.0)])
        other = sqlite3.connect(db, isolation_level=None, timeout=0)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the file (the store gives up after 1 s)
        try:
            with pytest.raises(SpatialMemoryError, match="locked"):
                memory.reset()
        finally:
            other.close()
        assert memory.items() == ["mug"]
        memory.reset()
        assert memory.items() == []


def test_reset_clears_memory_and_store(tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        memory.observe([obs(A, 0.0), obs(B, 0.0, item="keys")])
        memory.reset()
        assert memory.items() == []
        with pytest.raises(UnknownItemError):
            memory.locate("mug")
        memory.observe([obs(B, 1.0, item="wallet")])
        memory.save()
    with ItemMemory(CONFIG, MemoryStore(db)) as reopened:
        assert reopened.items() == ["wallet"]


# ---- negative evidence: a place seen empty ------------------------------------------------------------

def absent(memory: ItemMemory, place_of: Point, t: float, times: int, item: str = "mug") -> None:
    """Report the item's place nearest place_of as checked and empty, `times` frames from t (0.1 s apart)."""
    for k in range(times):
        checks = [(c.item, c.place_id) for c in memory.places_to_check()
                  if c.item == item and np.linalg.norm(c.position - np.array(place_of)) < 0.3]
        memory.observe_absent(checks, t + 0.1 * k)


def test_a_clock_that_goes_back_does_not_keep_a_seen_item_missing(memory: ItemMemory) -> None:
    """A bag played again: the mug's place was found empty at 900 s; the replay's clock starts again and shows the
    mug there at every frame. It used to stay "missing" until the replay passed 900 s."""
    memory.observe(stay(A, start=0.0, duration=600.0, every=60.0))
    absent(memory, A, 900.0, CONFIG.absent_after_checks)
    assert memory.locate("mug").missing
    memory.observe([obs(A, 1.0)])  # the replay
    answer = memory.locate("mug")
    assert not answer.missing and answer.current.position[0] == pytest.approx(A[0])


def test_two_cameras_frames_out_of_order_keep_the_emptiness(memory: ItemMemory) -> None:
    """One camera saw the place empty at t; another's frame of t - 0.1, handled after it, saw the mug still there:
    the mug left between the two, not the clock going back."""
    memory.observe(stay(A, start=0.0, duration=600.0, every=60.0))
    memory.observe(stay(B, start=700.0, duration=60.0))
    absent(memory, B, 900.0, CONFIG.absent_after_checks)
    memory.observe([obs(B, 900.0 + 0.1 * CONFIG.absent_after_checks - 0.2)])
    assert memory.locate("mug").missing


def test_a_place_seen_empty_makes_the_item_missing_and_current_its_likeliest_place(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=600.0, every=60.0))  # home
    memory.observe(stay(B, start=700.0, duration=60.0))  # moved
    assert memory.locate("mug").current.position[0] == pytest.approx(B[0])
    absent(memory, B, 900.0, CONFIG.absent_after_checks - 1)
    answer = memory.locate("mug")
    assert not answer.missing and answer.current.position[0] == pytest.approx(B[0])  # not yet: could be noise
    absent(memory, B, 901.0, 1)
    answer = memory.locate("mug")
    assert answer.missing and answer.current_inferred
    assert answer.current.position[0] == pytest.approx(A[0]) and not answer.displaced  # likely taken back home
    assert answer.usual.position[0] == pytest.approx(A[0])
    # Seen again, anywhere: a sighting again, and the empty place is a candidate for checks once more.
    memory.observe([obs(B, 950.0)])
    answer = memory.locate("mug")
    assert not answer.missing and not answer.current_inferred and answer.current.position[0] == pytest.approx(B[0])
    assert {c.place_id for c in memory.places_to_check()} == {0, 1}


def test_a_sighting_clears_earlier_misses(memory: ItemMemory) -> None:
    memory.observe(stay(B, start=0.0, duration=60.0))
    absent(memory, B, 100.0, CONFIG.absent_after_checks - 1)
    memory.observe([obs(B, 101.0)])  # it was there after all (occluded, blurred)
    absent(memory, B, 102.0, CONFIG.absent_after_checks - 1)
    assert not memory.locate("mug").missing


def test_when_every_place_was_seen_empty_current_stays_the_last_sighting(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=60.0))
    memory.observe(stay(B, start=100.0, duration=60.0))
    absent(memory, B, 200.0, CONFIG.absent_after_checks)
    assert memory.locate("mug").current.position[0] == pytest.approx(A[0])
    absent(memory, A, 300.0, CONFIG.absent_after_checks)
    answer = memory.locate("mug")
    assert answer.missing and not answer.current_inferred
    assert answer.current.position[0] == pytest.approx(B[0])  # whereabouts unknown: the last sighting, flagged
    # The place it left is not checked again; the other one is, to keep its "seen empty" time current.
    assert [c.place_id for c in memory.places_to_check()] == [0]


def test_a_place_seen_empty_before_the_item_left_its_last_place_is_a_candidate_again(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=600.0, every=60.0))  # home
    memory.observe(stay(B, start=700.0, duration=60.0))  # moved away
    absent(memory, A, 800.0, CONFIG.absent_after_checks)  # home empty: true then, the mug was at B
    absent(memory, B, 900.0, CONFIG.absent_after_checks)  # now B is empty too: it left after home was checked
    answer = memory.locate("mug")
    assert answer.missing and answer.current_inferred
    assert answer.current.position[0] == pytest.approx(A[0])  # home again: the likeliest place it went
    assert any(c.place_id == 0 for c in memory.places_to_check())  # and home is worth a look again
    absent(memory, A, 1000.0, CONFIG.absent_after_checks)  # looked: not there either
    answer = memory.locate("mug")
    assert answer.missing and not answer.current_inferred
    assert answer.current.position[0] == pytest.approx(B[0])  # whereabouts unknown: the last sighting, flagged


def test_a_place_kept_in_view_stays_seen_empty_when_the_item_leaves_its_last_place(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=600.0, every=60.0))  # home
    memory.observe(stay(B, start=700.0, duration=60.0))  # moved away
    absent(memory, A, 800.0, CONFIG.absent_after_checks)  # home empty
    absent(memory, A, 850.0, 1)  # still in view and still empty: one look is enough to say so
    checks = [(c.item, c.place_id) for c in memory.places_to_check()]  # both in view in the same frames
    for k in range(CONFIG.absent_after_checks):
        memory.observe_absent(checks, 900.0 + 0.1 * k)
    answer = memory.locate("mug")
    assert answer.missing and not answer.current_inferred  # home was empty all along: nowhere left to guess
    assert answer.current.position[0] == pytest.approx(B[0])


def test_dwell_does_not_bridge_a_time_the_place_was_seen_empty(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=10.0))
    absent(memory, A, 50.0, CONFIG.absent_after_checks)
    memory.observe([obs(A, 100.0)])  # back, but it was away in between
    assert memory.locate("mug").usual.dwell_s == pytest.approx(10.0)


def test_absence_is_off_with_zero_checks_and_ignores_unknowns() -> None:
    memory = ItemMemory(replace(CONFIG, absent_after_checks=0))
    memory.observe(stay(B, start=0.0, duration=60.0))
    absent(memory, B, 100.0, 20)
    assert not memory.locate("mug").missing
    on = ItemMemory(CONFIG)
    on.observe([obs(B, 0.0)])
    on.observe_absent([("keys", 0), ("mug", 99)], 10.0)  # unknown item, unknown place: nothing happens
    assert not on.locate("mug").missing


def test_seen_empty_and_returns_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        memory.observe(stay(A, start=0.0, duration=60.0))
        memory.observe(stay(B, start=100.0, duration=60.0))
        memory.observe(stay(A, start=200.0, duration=60.0))  # a return to A
        memory.observe(stay(B, start=300.0, duration=60.0))  # and one to B
        absent(memory, B, 400.0, CONFIG.absent_after_checks)
        before = memory.locate("mug")
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        after = memory.locate("mug")
    assert after.missing and after.current_inferred
    np.testing.assert_allclose(after.current.position, before.current.position)
    np.testing.assert_allclose(after.usual.position, A)


def test_a_sighting_handled_late_changes_neither_current_nor_returns(memory: ItemMemory) -> None:
    """Two cameras' workers hand sightings over out of stamp order: camera A's frame of 3604.9 (the mug still on
    the desk) came after B's of 3605.0 (on the sofa), made the desk current again and gave both places a return."""
    memory.observe(stay(A, start=0.0, duration=3600.0))
    memory.observe([obs(B, 3605.0)])
    memory.observe([obs(A, 3604.9)])
    answer = memory.locate("mug")
    assert answer.displaced and answer.current.last_seen == 3605.0
    np.testing.assert_allclose(answer.current.position, B)
    memory.observe([obs(B, 3606.0)])
    assert [p.returns for p in memory._items["mug"].places] == [0, 0]  # it never came back anywhere


def test_looks_older_than_the_sighting_do_not_empty_its_place(memory: ItemMemory) -> None:
    """Camera B's frames from before the mug was put down, handled after camera A saw it there, counted towards
    the five looks that make its place empty: one look after the sighting made it missing."""
    memory.observe(stay(B, start=0.0, duration=100.0))
    memory.observe([obs(A, 200.0)])
    for t in (199.6, 199.7, 199.8, 199.9, 200.1):
        memory.observe_absent([("mug", 1)], t)
    answer = memory.locate("mug")
    assert not answer.missing and answer.current.last_seen == 200.0


def test_a_restart_gives_the_same_answer_after_a_place_stayed_empty(tmp_path: Path) -> None:
    """A place kept in view moves its "seen empty" time on in RAM only; once that passes the moment the item was
    found gone, it is no longer a place the item may have gone to, and that must survive a restart."""
    config = replace(CONFIG, db_path=str(tmp_path / "m.db"))
    memory = ItemMemory(config, MemoryStore(config.db_path))
    memory.observe(stay(A, start=0.0, duration=3600.0))  # the desk: usual
    memory.observe(stay(B, start=3700.0, duration=100.0))  # then the sofa, last seen at 3800
    for t in range(3801, 3851):  # the desk in view and empty: seen empty, then kept so in RAM
        memory.observe_absent([("mug", 0)], float(t))
    for t in range(3900, 3905):  # the sofa found empty: missing since 3904
        memory.observe_absent([("mug", 1)], float(t))
    for t in range(3905, 4000):  # the desk still empty after the mug left the sofa: not where it went
        memory.observe_absent([("mug", 0)], float(t))
    before = memory.locate("mug")
    # what a restart after a kill -9 now would read: the file as committed so far, not what close() would add
    with ItemMemory(config, MemoryStore(config.db_path, exclusive=False)) as killed:
        after = killed.locate("mug")
    memory.close()
    assert before.missing and not before.current_inferred
    assert (after.missing, after.current_inferred) == (before.missing, before.current_inferred)
    np.testing.assert_allclose(after.current.position, before.current.position)


def test_save_commits_the_seen_empty_times_kept_in_ram(tmp_path: Path) -> None:
    """A place kept in view and empty moves its time on in RAM only; save_memory writes those times too."""
    config = replace(CONFIG, db_path=str(tmp_path / "m.db"))
    with ItemMemory(config, MemoryStore(config.db_path)) as memory:
        memory.observe(stay(A, start=0.0, duration=100.0))
        memory.observe([obs(B, 200.0)])
        for t in range(201, 260):  # A in view and empty: seen empty at 205, then kept so in RAM
            memory.observe_absent([("mug", 0)], float(t))

        def stored_seen_empty() -> float:
            with MemoryStore(config.db_path, exclusive=False) as reader:
                return reader.load()["mug"].places[0].seen_empty

        assert stored_seen_empty() == 205.0
        memory.save()
        assert stored_seen_empty() == 259.0


def test_reset_starts_the_clock_again() -> None:
    """The return prior's "now" is the memory's clock: after reset_memory and a bag played from its start again,
    the old clock (5000 s) said the mug seen on the sofa 10 s before was probably back home."""
    config = replace(CONFIG, return_prior=True)
    replayed, fresh = ItemMemory(config), ItemMemory(config)
    replayed.observe(stay(A, start=0.0, duration=3600.0))
    replayed.advance(5000.0)
    replayed.reset()
    for memory in (replayed, fresh):
        memory.observe(stay(A, start=0.0, duration=3600.0))
        memory.observe(stay(B, start=3700.0, duration=100.0))
        memory.advance(3810.0)
    a, b = replayed.locate("mug"), fresh.locate("mug")
    assert (a.current_inferred, a.displaced) == (b.current_inferred, b.displaced) == (False, True)


def test_a_name_that_is_not_text_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """A lone surrogate passed the checks, then failed the store's commit, and every commit after it."""
    config = replace(CONFIG, db_path=str(tmp_path / "m.db"))
    with ItemMemory(config, MemoryStore(config.db_path)) as memory:
        memory.observe([obs(A, 1.0)])
        with pytest.raises(BadInputError, match="not valid text"):
            memory.observe([obs(A, 2.0), obs(B, 2.0, item="bad\udcff")])
        memory.observe([obs(A, 3.0)])
        assert memory.items() == ["mug"]
    with ItemMemory(config, MemoryStore(config.db_path)) as memory:
        assert memory.locate("mug").current.last_seen == 3.0


# ---- a return needs a visit (memory.min_stay_sightings) ----------------------------------------------------------

C = (4.0, 0.0, 0.0)


def returns(memory: ItemMemory) -> dict[int, int]:
    return {p.place_id: p.returns for p in memory._items["mug"].places}


def test_a_misread_now_and_then_earns_no_return(memory: ItemMemory) -> None:
    """Seed 150's pallet: another board, read as the item a glimpse at a time, made phantom places that earned a
    return at every glimpse and outranked the item's home."""
    memory.observe(stay(A, start=0.0, duration=600.0))  # home: place 0
    memory.observe(stay(B, start=700.0, duration=100.0))  # a real stay at B: place 1
    for k in range(6):  # back home, and now and then a glimpse of "it" at B, two sightings at a time
        memory.observe(stay(A, start=1000.0 + 100 * k, duration=40.0))
        memory.observe([obs(B, 1050.0 + 100 * k), obs(B, 1051.0 + 100 * k)])
    memory.observe(stay(A, start=1600.0, duration=40.0))
    assert returns(memory) == {0: 1, 1: 0}  # home's one return (back from B); B none for the glimpses
    memory.observe([obs(B, 2000.0), obs(B, 2001.0)])
    assert returns(memory) == {0: 1, 1: 0}
    memory.observe([obs(B, 2002.0)])  # it really went to B: the third sighting makes a stay
    assert returns(memory) == {0: 1, 1: 1}


def test_one_sighting_is_a_stay_at_one() -> None:
    memory = ItemMemory(replace(CONFIG, min_stay_sightings=1))
    memory.observe(stay(A, start=0.0, duration=600.0))
    memory.observe(stay(B, start=700.0, duration=100.0))
    memory.observe([obs(A, 900.0)])
    memory.observe([obs(B, 950.0)])
    assert returns(memory) == {0: 1, 1: 1}


def test_a_short_real_visit_earns_its_return(memory: ItemMemory) -> None:
    """A patrol passing an item put back home sees it for a moment, a dozen frames: that is a stay."""
    memory.observe(stay(A, start=0.0, duration=60.0))
    memory.observe(stay(B, start=100.0, duration=600.0))
    memory.observe([obs(A, 800.0 + 0.1 * k) for k in range(12)])
    assert returns(memory) == {0: 1, 1: 0}
    np.testing.assert_allclose(memory.locate("mug").usual.position, A)


def test_a_sighting_at_the_last_stay_starts_the_count_over(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=600.0))
    memory.observe(stay(B, start=700.0, duration=100.0))
    memory.observe(stay(A, start=900.0, duration=100.0))  # settled at A again
    for k in range(5):  # B, B, A, B, B, A...: never three at B without one at A
        memory.observe([obs(B, 1100.0 + 10 * k), obs(B, 1101.0 + 10 * k), obs(A, 1102.0 + 10 * k)])
    assert returns(memory)[1] == 0


def test_a_misread_inside_a_visit_does_not_cut_it(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=600.0))
    memory.observe(stay(B, start=700.0, duration=100.0))
    # back home: seen at A, a misread at C in between, at A again, and again: three at A, the count at A goes on
    memory.observe([obs(A, 900.0), obs(C, 901.0), obs(A, 902.0), obs(A, 903.0)])
    assert returns(memory) == {0: 1, 1: 0, 2: 0}


def test_a_place_seen_empty_starts_its_visit_over(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=600.0))
    memory.observe(stay(B, start=700.0, duration=100.0))
    memory.observe(stay(A, start=900.0, duration=100.0))
    memory.observe([obs(B, 1100.0), obs(B, 1101.0)])  # two at B ...
    memory.observe([obs(C, 1102.0)])  # ... it is seen elsewhere, and B is found empty
    absent(memory, B, 1103.0, CONFIG.absent_after_checks)
    memory.observe([obs(B, 1200.0)])  # one more at B: a new visit's first, not the third
    assert returns(memory)[1] == 0
    memory.observe([obs(B, 1201.0), obs(B, 1202.0)])
    assert returns(memory)[1] == 1


def test_a_stay_near_the_last_one_is_no_return(memory: ItemMemory) -> None:
    near = (0.4, 0.0, 0.0)  # beyond the place radius (0.3), within displaced_distance_m (0.5)
    memory.observe(stay(A, start=0.0, duration=600.0))
    memory.observe(stay(near, start=700.0, duration=100.0))
    memory.observe(stay(A, start=900.0, duration=100.0))
    assert returns(memory) == {0: 0, 1: 0}


def test_a_place_made_by_a_frame_handled_late_is_new(memory: ItemMemory) -> None:
    """Another camera's frame handled late makes the place a moment before the sightings that are the first
    visit there: not a place the item came back to."""
    memory.observe(stay(A, start=0.0, duration=700.0))
    memory.observe([obs(B, 699.9)])  # handled after the sighting at A of 700: it makes place 1, and counts no visit
    memory.observe([obs(B, 701.0), obs(B, 702.0), obs(B, 703.0)])
    assert returns(memory) == {0: 0, 1: 0}
    assert memory._items["mug"].settled == 1


def test_a_forgotten_last_stay_gives_no_return() -> None:
    memory = ItemMemory(replace(CONFIG, max_places_per_item=2))
    memory.observe(stay(A, start=0.0, duration=60.0))  # 0
    memory.observe(stay(B, start=100.0, duration=600.0))  # 1, its last stay
    memory.observe([obs(A, 800.0)])  # one at A: place 0 known, the visit counts from here
    memory.observe([obs(C, 801.0)])  # a new place past the bound: B (less usual than A's first-place half) goes
    assert sorted(returns(memory)) == [0, 2]
    memory.observe([obs(A, 802.0), obs(A, 803.0)])
    assert returns(memory)[0] == 0  # no last stay to have come back from
    assert memory._items["mug"].settled == 0


def test_the_last_stay_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        memory.observe(stay(A, start=0.0, duration=60.0))
        memory.observe(stay(B, start=100.0, duration=60.0))  # settled at B
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        assert memory._items["mug"].settled == 1
        memory.observe([obs(A, 300.0 + k) for k in range(3)])
        assert returns(memory) == {0: 1, 1: 0}


def test_a_sighting_handled_late_counts_towards_no_visit(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=600.0))
    memory.observe(stay(B, start=700.0, duration=100.0))  # the last stay
    memory.observe([obs(A, 901.0), obs(A, 902.0)])  # two at A...
    memory.observe([obs(A, 899.0)])  # ... and another camera's frame from before them, handled after
    assert returns(memory) == {0: 0, 1: 0}
    memory.observe([obs(A, 903.0)])
    assert returns(memory) == {0: 1, 1: 0}


def test_after_the_clock_went_back_a_place_made_later_is_known(memory: ItemMemory) -> None:
    """A bag played again: A was made at 1000 by the clock of the first play, so it was known before 500."""
    memory.observe(stay(A, start=1000.0, duration=100.0))
    memory.observe(stay(B, start=2000.0, duration=100.0))
    memory.observe([obs(A, 500.0 + k) for k in range(3)])
    assert returns(memory) == {0: 1, 1: 0}


def test_a_first_visit_split_by_a_glimpse_of_the_last_stay_is_no_return(memory: ItemMemory) -> None:
    memory.observe(stay(A, start=0.0, duration=3600.0))
    memory.observe([obs(B, 4000.0), obs(B, 4001.0)])  # moved to B, a place new to it
    memory.observe([obs(A, 4002.0)])  # a glimpse at home (a misread) starts the count over
    memory.observe([obs(B, 4010.0 + k) for k in range(3)])
    assert returns(memory) == {0: 0, 1: 0}
    assert memory._items["mug"].settled == 1


def test_a_place_made_since_the_last_stay_is_no_return(memory: ItemMemory) -> None:
    """A misread makes B while the mug stays at A; a later burst of three misreads there is a "stay" (no count
    tells it from one) but no return: the mug had not been at B before its last stay."""
    memory.observe(stay(A, start=0.0, duration=3600.0))
    memory.observe([obs(B, 3700.0)])  # a glimpse makes B
    memory.observe(stay(A, start=3710.0, duration=100.0))
    memory.observe([obs(B, 4000.0 + j) for j in range(3)])
    assert returns(memory) == {0: 0, 1: 0}
    assert memory._items["mug"].settled == 1
    # once it has stayed elsewhere since, B is a place it was at before: a stay there is a return
    memory.observe(stay(C, start=5000.0, duration=100.0))
    memory.observe([obs(B, 5200.0 + j) for j in range(3)])
    assert returns(memory) == {0: 0, 1: 1, 2: 0}


def test_a_reset_forgets_the_counts() -> None:
    memory = ItemMemory(CONFIG)
    memory.observe(stay(A, start=0.0, duration=60.0))
    memory.observe([obs(B, 100.0), obs(B, 101.0)])  # two towards a stay at place 1
    memory.reset()
    memory.observe([obs(A, 200.0)])  # the new mug's place 0 ...
    memory.observe([obs(B, 201.0)])  # ... and place 1: one sighting, not a third
    assert memory._items["mug"].settled == -1


def test_the_first_sighting_counts_towards_the_first_stay() -> None:
    memory = ItemMemory(replace(CONFIG, min_stay_sightings=1))
    memory.observe([obs(A, 0.0)])
    assert memory._items["mug"].settled == 0


def _stays_and_misreads() -> list[list[ItemObservation]]:
    """Batches that exercise the stay counts: a stay at A, a misread making B, two sightings of a visit to C
    that goes on past the next batch, a stay at C, then a burst of three misreads at B (a place made since
    the last stay but one) and a real stay back at A."""
    return [
        stay(A, start=0.0, duration=600.0),
        [obs(B, 700.0)],  # a misread makes B while the mug sits at A
        stay(A, start=710.0, duration=100.0),
        [obs(C, 900.0), obs(C, 901.0)],  # it went to C: two sightings ...
        [obs(C, 902.0)],  # ... and the third, after a restart in between
        [obs(B, 1000.0 + j) for j in range(3)],  # a burst of misreads at B: made before C's stay, so known now
        stay(A, start=1100.0, duration=50.0),  # back home
    ]


def test_a_restart_between_any_two_batches_changes_no_count(tmp_path: Path) -> None:
    """The counts towards a stay and which places were made since the last stay are stored with the places: a
    node restarted in the middle of a visit, or after a misread made a place, goes on as if it had not been."""
    batches = _stays_and_misreads()

    def snapshot(memory: ItemMemory) -> tuple[int, dict[int, tuple[int, int, bool]]]:
        state = memory._items["mug"]
        return state.settled, {p.place_id: (p.returns, p.stay_sightings, p.since_stay) for p in state.places}

    plain = ItemMemory(CONFIG)
    expected = []
    for batch in batches:
        plain.observe(batch)
        expected.append(snapshot(plain))
    assert [settled for settled, _ in expected] == [0, 0, 0, 0, 2, 1, 0]  # A, C (at the third), B's burst, A
    for cut in range(1, len(batches)):
        db = tmp_path / f"cut{cut}.db"
        with ItemMemory(CONFIG, MemoryStore(db)) as memory:
            for batch in batches[:cut]:
                memory.observe(batch)
        with ItemMemory(CONFIG, MemoryStore(db)) as memory:
            for k in range(cut, len(batches)):
                memory.observe(batches[k])
                assert snapshot(memory) == expected[k], f"restart after batch {cut}, then batch {k}"


def test_a_visit_under_way_goes_on_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        memory.observe(stay(A, start=0.0, duration=600.0))
        memory.observe(stay(B, start=700.0, duration=100.0))  # last stay B
        memory.observe([obs(A, 900.0), obs(A, 901.0)])  # two of three at A
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        memory.observe([obs(A, 902.0)])  # the third: a stay, and a return home
        assert returns(memory) == {0: 1, 1: 0}


def test_a_place_made_since_the_last_stay_stays_new_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        memory.observe(stay(A, start=0.0, duration=3600.0))
        memory.observe([obs(B, 3700.0)])  # a misread makes B
    with ItemMemory(CONFIG, MemoryStore(db)) as memory:
        memory.observe(stay(A, start=3710.0, duration=100.0))
        memory.observe([obs(B, 4000.0 + j) for j in range(3)])  # a burst of misreads: a stay, but no return
        assert returns(memory) == {0: 0, 1: 0}


def test_after_the_clock_went_back_an_item_taken_away_is_missing(memory: ItemMemory) -> None:
    """A second bag (or a simulator restarted) into the same memory: the mug sat at A at 1000-1060 s; on the new
    clock, from 5 s, A is seen empty. The empty looks were older than the last sighting, so the mug stayed "not
    missing" at A until the clock passed 1060 s."""
    memory.observe(stay(A, start=1000.0, duration=60.0))
    absent(memory, A, 5.0, CONFIG.absent_after_checks)
    answer = memory.locate("mug")
    assert answer.missing
    assert answer.current.last_seen < 5.0 and answer.current.dwell_s == pytest.approx(60.0)  # intervals kept


def test_after_the_clock_went_back_the_first_seen_place_is_still_the_first_one(tmp_path: Path) -> None:
    """The mug sat on the desk (A) for a minute at 500 s; after a restart on a new clock (from 2 s) it is seen on
    the sofa (B) three times. B had the lower first_seen, the first-seen half return, and became the usual place."""
    with ItemMemory(CONFIG, MemoryStore(tmp_path / "memory.db")) as before:
        before.observe(stay(A, start=500.0, duration=60.0))
    with ItemMemory(CONFIG, MemoryStore(tmp_path / "memory.db")) as after:
        after.observe([obs(B, 2.0 + k) for k in range(3)])
        answer = after.locate("mug")
        np.testing.assert_allclose(answer.usual.position, A, atol=1e-9)
        assert answer.displaced
    with ItemMemory(CONFIG, MemoryStore(tmp_path / "memory.db")) as reopened:  # the moved times were written
        assert reopened.locate("mug").usual.last_seen < 2.0


def test_two_cameras_on_two_clocks_move_the_times_back_once(memory: ItemMemory) -> None:
    """Frames alternating between two clocks would move every time back at each frame (each move adds a capped gap,
    300 s, to the keys' dwell); the first move stands and the rest are warned of."""
    for k in range(20):
        memory.observe([obs(A, 1e6 + k, item="keys")])
        memory.observe([obs(B, 10.0 + k)])
    keys = memory.locate("keys").current
    assert keys.dwell_s < 2 * CONFIG.max_dwell_gap_s


def test_a_late_frame_of_the_old_clock_goes_onto_the_moved_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cameras, one simulator restart: the other camera's last old-clock frame, handled just after the first
    new-clock one, lifted "now" back to the old clock; 10 s later the next frame moved every time back a second
    time, the new clock's sightings with them (dwell 323 s for 24, first_seen -991 for 0)."""
    import spatial_memory_ros.core.item_memory as im

    clock = [100.0]
    monkeypatch.setattr(im.time, "monotonic", lambda: clock[0])
    memory = ItemMemory(replace(CONFIG, max_dwell_gap_s=300.0))
    for t in range(1000, 1010):  # the old clock ran to 1009 s
        memory.observe([obs(A, float(t))])
        clock[0] += 1
    memory.observe([obs(A, 10.0)])  # the restart: one camera's first frame of the new clock
    memory.advance(1009.9)  # the other camera's last old-clock frame, handled after it
    for k in range(1, 15):
        clock[0] += 1
        memory.observe([obs(A, 10.0 + k)])
    place = memory._items["mug"].places[0]
    assert place.dwell_s == pytest.approx(24.0) and place.first_seen == pytest.approx(0.0)


# ---- the memory's clock, across a restart ----------------------------------------------------------------


def test_a_restart_answers_at_the_clock_the_memory_had_reached(tmp_path: Path) -> None:
    """With the return prior on, half an hour of frames without the mug made it "back home"; the clock was not
    stored, so after a restart "now" fell back to the mug's last sighting and the same store answered it away
    (a restarted node until its first frame, and `spatial-memory locate` always)."""
    db = tmp_path / "m.db"
    config = replace(CONFIG, db_path=str(db), return_prior=True)
    with ItemMemory(config, MemoryStore(db)) as memory:
        memory.observe(stay(A, start=0.0, duration=3600.0))
        memory.observe(stay(B, start=3700.0, duration=20.0))
        memory.advance(3720.0 + 1800.0)
        before = memory.locate("mug")
    assert before.current_inferred and before.current.position[0] == pytest.approx(A[0])
    with ItemMemory(config, MemoryStore(db)) as memory:
        after = memory.locate("mug")
    assert after.current_inferred and after.current.position[0] == pytest.approx(A[0])


def test_frames_without_a_change_commit_the_clock_every_ten_seconds(tmp_path: Path) -> None:
    """A kill loses at most ten seconds of the clock: it is committed on its own, not only with items."""
    db = tmp_path / "m.db"
    memory = ItemMemory(replace(CONFIG, db_path=str(db)), MemoryStore(db))
    memory.observe([obs(A, 0.0)])
    for k in range(1, 451):  # 45 s of frames at 10 Hz, nothing seen
        memory.advance(0.1 * k)
    with MemoryStore(db, exclusive=False) as reader:  # what a kill now would leave
        assert 35.0 <= reader.clock <= 45.0
    memory.close()
    with MemoryStore(db, exclusive=False) as reader:
        assert reader.clock == pytest.approx(45.0)


def test_a_slow_camera_after_the_clock_went_back_is_not_taken_for_late_frames() -> None:
    """After a bag looped, every stamp over now + 5 s was taken for a late frame of the old clock for 10 s: a
    camera 10 s apart had its new sightings stored 981 s in the past and "now" frozen."""
    memory = ItemMemory(MemoryConfig(db_path=""))
    a, b = np.zeros(3), np.array([3.0, 0.0, 0.0])
    for t in np.arange(0.0, 1000.0, 10.0):
        memory.advance(t)
        memory.observe([ItemObservation("mug", a, t)])
    for t in (0.0, 10.0, 20.0, 30.0):  # the bag plays again; the mug is at b now
        memory.advance(t)
        memory.observe([ItemObservation("mug", b if t > 0 else a, t)])
        answer = memory.locate("mug")
        assert answer.current.last_seen == t
    assert np.allclose(answer.current.position, b)
    # a late frame of the old clock, near where it was, is still moved back with the remembered times
    memory.observe([ItemObservation("mug", b, 992.0)])
    assert memory.locate("mug").current.last_seen < 30.0
