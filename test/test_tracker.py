"""Tracker: ids, states, ageing, velocity and item identity on small synthetic box sequences."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_memory_ros.core.config import TrackerConfig
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.tracker import Tracker, box_iou
from spatial_memory_ros.core.types import Detection, PositionSource, TrackInfo, TrackState

DT = 0.1  # s between frames


def det(x: float, y: float, size: float = 40.0, item: str = "", label: str = "", **kw) -> Detection:
    return Detection(
        box=np.array([x, y, x + size, y + size]),
        label=label or ("item" if item else "object"),
        score=kw.pop("score", 0.9),
        item=item,
        **kw,
    )


def by_id(tracks: list) -> dict:
    return {t.track_id: t for t in tracks}


def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("speed", [5.0, 10.0, 20.0])
@pytest.mark.parametrize("dy", [0.0, 15.0])
def test_ids_stable_when_two_boxes_cross(speed: float, dy: float) -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    ids_a, ids_b = set(), set()
    for k in range(40):
        xa, xb = 20 + speed * k, 20 + speed * 39 - speed * k  # they pass each other half way
        a, b = det(xa, 100), det(xb, 100 + dy)
        tracks = tracker.update([a, b], k * DT)
        assert len(tracks) == 2
        for t in tracks:
            if np.allclose(t.box, a.box) and not np.allclose(a.box, b.box):
                ids_a.add(t.track_id)
            elif np.allclose(t.box, b.box) and not np.allclose(a.box, b.box):
                ids_b.add(t.track_id)
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


@pytest.mark.parametrize("min_hits", [1, 2, 3, 5])
def test_tentative_until_min_hits(min_hits: int) -> None:
    tracker = Tracker(TrackerConfig(min_hits=min_hits))
    for k in range(6):
        (track,) = tracker.update([det(100 + k, 100)], k * DT)
        expected = TrackState.CONFIRMED if k + 1 >= min_hits else TrackState.TENTATIVE
        assert track.state == expected, k
        assert track.track_id == 1


def test_tentative_track_deleted_on_first_miss() -> None:  # tentative_max_misses 0: the old behaviour
    tracker = Tracker(TrackerConfig(min_hits=3, tentative_max_misses=0))
    tracker.update([det(100, 100)], 0.0)
    tracker.update([det(100, 100)], DT)
    assert tracker.update([], 2 * DT) == []
    (track,) = tracker.update([det(100, 100)], 3 * DT)
    assert track.track_id == 2 and track.state == TrackState.TENTATIVE


@pytest.mark.parametrize("allowed", [1, 2])
def test_tentative_track_survives_allowed_misses(allowed: int) -> None:
    """A detector that blinks while a track is still tentative does not restart the id."""
    tracker = Tracker(TrackerConfig(min_hits=3, tentative_max_misses=allowed))
    tracker.update([det(100, 100)], 0.0)
    stamp = DT
    for _ in range(allowed):
        (track,) = tracker.update([], stamp)
        assert track.track_id == 1 and track.state == TrackState.TENTATIVE
        stamp += DT
    (track,) = tracker.update([det(101, 100)], stamp)
    assert track.track_id == 1 and track.state == TrackState.TENTATIVE  # 2 hits of 3
    (track,) = tracker.update([det(102, 100)], stamp + DT)
    assert track.track_id == 1 and track.state == TrackState.CONFIRMED
    for k in range(allowed + 1):  # misses are counted in a row: confirmed now, so LOST, not deleted
        assert tracker.update([], stamp + (k + 2) * DT)[0].state == TrackState.LOST


@pytest.mark.parametrize("allowed", [0, 1, 2])
def test_tentative_track_deleted_after_allowed_misses(allowed: int) -> None:
    tracker = Tracker(TrackerConfig(min_hits=3, tentative_max_misses=allowed))
    tracker.update([det(100, 100)], 0.0)
    for k in range(allowed):
        assert len(tracker.update([], (k + 1) * DT)) == 1
    assert tracker.update([], (allowed + 1) * DT) == []


# Frame periods exact in binary, so no rounding lands a frame on either side of the boundary.
@pytest.mark.parametrize("max_age_s, frame_dt", [(0.5, 0.125), (2.0, 0.25), (1.0, 0.0625)])
def test_lost_then_deleted_after_max_age(max_age_s: float, frame_dt: float) -> None:
    tracker = Tracker(TrackerConfig(min_hits=2, max_age_s=max_age_s))
    tracker.update([det(100, 100)], 0.0)
    (track,) = tracker.update([det(100, 100)], frame_dt)
    last_seen = track.last_seen
    k = 2
    while True:
        stamp = k * frame_dt
        tracks = tracker.update([], stamp)
        if stamp - last_seen > max_age_s:
            assert tracks == []
            break
        (track,) = tracks
        assert track.state == TrackState.LOST and track.track_id == 1
        assert track.last_seen == last_seen
        assert track.confidence <= 0.9
        k += 1
    assert k * frame_dt - last_seen <= max_age_s + frame_dt  # deleted on the first frame past it


@pytest.mark.parametrize("misses", [1, 3])
def test_rematch_after_short_miss_keeps_id(misses: int) -> None:
    tracker = Tracker(TrackerConfig(min_hits=2, max_age_s=1.0))
    stamp = 0.0
    for _ in range(3):
        tracker.update([det(100, 100)], stamp)
        stamp += DT
    for _ in range(misses):
        assert tracker.update([], stamp)[0].state == TrackState.LOST
        stamp += DT
    (track,) = tracker.update([det(102, 101)], stamp)
    assert track.track_id == 1 and track.state == TrackState.CONFIRMED and track.last_seen == stamp


def test_lost_box_moves_on_with_velocity() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1, velocity_smoothing=1.0))
    for k in range(3):
        tracker.update([det(100 + 10 * k, 100)], k * DT)  # 100 px/s to the right
    (track,) = tracker.update([], 3 * DT)
    assert track.state == TrackState.LOST
    np.testing.assert_allclose(track.box, [130, 100, 170, 140], atol=1e-6)
    # ... and a detection where the object now is picks the track up again.
    (track,) = tracker.update([det(150, 100)], 5 * DT)
    assert track.track_id == 1 and track.state == TrackState.CONFIRMED


@pytest.mark.parametrize("velocity", [(0.5, 0.0, 0.0), (-0.2, 0.3, 0.1)])
@pytest.mark.parametrize("smoothing", [0.2, 1.0])
def test_velocity_of_constant_velocity_object(velocity: tuple, smoothing: float) -> None:
    v = np.array(velocity)
    p0 = np.array([1.0, 2.0, 0.5])
    tracker = Tracker(TrackerConfig(min_hits=1, velocity_smoothing=smoothing))
    (track,) = tracker.update([det(100, 100, position=p0, position_source=PositionSource.DEPTH)], 0.0)
    np.testing.assert_array_equal(track.velocity, np.zeros(3))  # unknown after one position
    for k in range(1, 10):
        p = p0 + v * k * DT
        (track,) = tracker.update(
            [det(100 + k, 100, position=p, position_source=PositionSource.DEPTH)], k * DT
        )
    np.testing.assert_allclose(track.velocity, v, atol=1e-9)
    assert track.position is not None
    np.testing.assert_allclose(track.position, p0 + v * 9 * DT)
    assert track.position_source == PositionSource.DEPTH


def test_velocity_smoothing_damps_a_step() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1, velocity_smoothing=0.5))
    positions = [np.zeros(3), np.zeros(3), np.array([0.1, 0.0, 0.0])]  # one 1 m/s step over 0.1 s
    for k, p in enumerate(positions):
        (track,) = tracker.update([det(100, 100, position=p)], k * DT)
    np.testing.assert_allclose(track.velocity, [0.5, 0.0, 0.0])


def test_no_position_gives_zero_velocity() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    for k in range(4):
        (track,) = tracker.update([det(100 + 5 * k, 100)], k * DT)
    assert track.position is None and track.position_source == PositionSource.NONE
    np.testing.assert_array_equal(track.velocity, np.zeros(3))


def test_confidence_is_smoothed_score() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    (track,) = tracker.update([det(100, 100, score=1.0)], 0.0)
    assert track.confidence == pytest.approx(1.0)
    for k in range(1, 30):
        (track,) = tracker.update([det(100, 100, score=0.2)], k * DT)
    assert track.confidence == pytest.approx(0.2, abs=1e-3)


def test_items_keep_identity_when_boxes_swap() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    tracks = tracker.update([det(100, 100, item="mug"), det(300, 100, item="keys")], 0.0)
    ids = {t.item: t.track_id for t in tracks}
    # The two items swap places between frames: IoU alone would swap the ids.
    tracks = tracker.update([det(300, 100, item="mug"), det(100, 100, item="keys")], DT)
    assert {t.item: t.track_id for t in tracks} == ids
    assert all(t.state == TrackState.CONFIRMED for t in tracks)


def test_item_rematches_its_track_with_no_overlap() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1, max_age_s=5.0))
    tracker.update([det(100, 100, item="mug")], 0.0)
    assert tracker.update([], DT)[0].state == TrackState.LOST
    (track,) = tracker.update([det(500, 400, item="mug")], 2 * DT)  # moved far while unseen
    assert track.track_id == 1 and track.state == TrackState.CONFIRMED


def test_an_item_back_in_view_after_its_track_was_deleted_gets_its_id_back_tentative_again() -> None:
    # An object leaving view and coming back keeps its id; for a named item the name says it is the same one.
    tracker = Tracker(TrackerConfig(min_hits=3, max_age_s=1.0))
    for k in range(3):
        tracker.update([det(100, 100, item="mug"), det(300, 100, item="keys")], k * DT)
    ids = {t.item: t.track_id for t in tracker.update([det(300, 100, item="keys")], 3 * DT)}
    assert tracker.update([det(300, 100, item="keys")], 2.0)[0].item == "keys"  # the mug's track is deleted
    tracks = tracker.update([det(500, 400, item="mug"), det(300, 100, item="keys"), det(0, 0)], 2.1)
    mug = next(t for t in tracks if t.item == "mug")
    unnamed = next(t for t in tracks if not t.item)
    assert mug.track_id == ids["mug"] and mug.first_seen == 0.0
    # tentative again, as a new track: the item memory is told of it as before (after min_hits)
    assert mug.state == TrackState.TENTATIVE
    assert unnamed.track_id == 3  # a new object still gets a new id: the item took none
    for k in (2.2, 2.3):
        tracks = tracker.update([det(500, 400, item="mug")], k)
    assert by_id(tracks)[ids["mug"]].state == TrackState.CONFIRMED


def test_an_item_back_keeps_no_id_that_a_live_track_still_holds_nor_one_from_before_a_reset() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1, max_age_s=1.0))
    tracker.update([det(100, 100, item="cup")], 0.0)  # a tag named "cup"
    tracker.update([det(100, 100, item="cup", label="cup")], 0.9)  # a class detection named "cup" too
    tracks = tracker.update([det(100, 100, item="cup")], 1.2)  # the tag's track is gone, the class's lost
    assert sorted(t.track_id for t in tracks) == [2, 3]  # not 1 again while track 2 is "cup" under a label
    tracker.reset()
    assert [t.track_id for t in tracker.update([det(0, 0), det(100, 100, item="cup")], 5.0)] == [1, 2]


@pytest.mark.parametrize(
    "second",
    [det(100, 100, item="keys"), det(100, 100), det(100, 100, label="person")],
    ids=["other-item", "unnamed", "other-label"],
)
def test_detection_never_matches_a_track_of_another_identity(second: Detection) -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    tracker.update([det(100, 100, item="mug")], 0.0)
    tracks = tracker.update([second], DT)  # same box, different identity
    assert len(tracks) == 2
    old, new = tracks
    assert old.item == "mug" and old.state == TrackState.LOST
    assert new.track_id == 2 and new.item == second.item and new.label == second.label


def test_duplicate_item_in_one_frame_keeps_best() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    tracks = tracker.update([det(100, 100, item="mug", score=0.3), det(300, 100, item="mug", score=0.8)], 0.0)
    assert len(tracks) == 1 and tracks[0].box[0] == 300


def test_ids_per_instance_and_reset() -> None:
    a, b = Tracker(TrackerConfig(min_hits=1)), Tracker(TrackerConfig(min_hits=1))
    a.update([det(0, 0), det(100, 100)], 0.0)
    assert [t.track_id for t in b.update([det(0, 0)], 0.0)] == [1]
    a.reset()
    assert a.update([], 1.0) == []
    assert [t.track_id for t in a.update([det(0, 0)], 1.1)] == [1]


def test_time_going_backwards_clears_tracks_and_never_reuses_an_id() -> None:
    """Ids restarted at 1 after the clock went back: a consumer holding id 1 from before took a new object (the
    person that was id 2) for the old one."""
    tracker = Tracker(TrackerConfig(min_hits=1))
    tracker.update([det(0, 0), det(300, 0)], 10.0)
    tracks = tracker.update([det(300, 0), det(0, 0)], 1.0)
    assert [t.track_id for t in tracks] == [3, 4] and all(t.first_seen == 1.0 for t in tracks)


def test_sorted_by_id_including_lost() -> None:
    tracker = Tracker(TrackerConfig(min_hits=1))
    tracker.update([det(0, 0), det(200, 0), det(400, 0)], 0.0)
    tracks = tracker.update([det(0, 0), det(400, 0)], DT)
    assert [t.track_id for t in tracks] == [1, 2, 3]
    assert [t.state for t in tracks] == [TrackState.CONFIRMED, TrackState.LOST, TrackState.CONFIRMED]


@pytest.mark.parametrize(
    "bad",
    [
        Detection(box=np.array([0.0, 0.0, 10.0]), label="object", score=1.0),
        Detection(box=np.array([0.0, 0.0, np.nan, 10.0]), label="object", score=1.0),
        Detection(box=np.array([10.0, 0.0, 0.0, 10.0]), label="object", score=1.0),
        Detection(box=np.array([0.0, 0.0, 10.0, 10.0]), label="object", score=1.0, position=np.zeros(2)),
        Detection(box=np.array([0.0, 0.0, 10.0, 10.0]), label="object", score=float("nan")),  # kept in the mean
        Detection(box=np.array([0.0, 0.0, 10.0, 10.0]), label="object", score=1.5),
    ],
    ids=["short-box", "nan-box", "inverted-box", "2d-position", "nan-score", "score-above-one"],
)
def test_bad_detection_raises(bad: Detection) -> None:
    with pytest.raises(BadInputError):
        Tracker(TrackerConfig()).update([bad], 0.0)
    with pytest.raises(BadInputError):
        Tracker(TrackerConfig()).update([], float("nan"))


def test_frames_a_microsecond_apart_give_no_velocity() -> None:
    """1 px in 1 us was 1e6 px/s: the next frame's prediction missed the object and a second track was born."""
    tracker = Tracker(TrackerConfig(min_hits=1))
    at = lambda x: det(100.0 * x, 100.0, position=np.array([x, 0.0, 0.0]))  # noqa: E731 - 1 px is 1 cm
    tracker.update([at(1.00)], 0.0)
    moved = tracker.update([at(1.01)], 1e-6)
    assert float(np.abs(moved[0].velocity).max()) < 1.0  # was 1e4 m/s
    tracks = tracker.update([at(1.02)], 0.1)
    assert [t.track_id for t in tracks] == [1]


def test_lost_tracks_are_bounded_when_the_stamp_stands_still() -> None:
    """Expiry is by time: frames all stamped alike (a source whose clock stands still) kept every lost track."""
    tracker = Tracker(TrackerConfig(min_hits=1))
    for k in range(700):
        tracker.update([det(50.0 * (k % 40), 60.0 * (k // 40))], 5.0)  # a new place each frame: a new track
    tracker.update([det(2000.0, 2000.0)], 5.0)  # the newest
    ids = [t.track_id for t in tracker.update([], 5.0)]
    assert len(ids) == 512 and 701 in ids


def test_a_turn_compensated_keeps_the_id_of_a_box_the_picture_moved() -> None:
    """A camera that turned moves everything in the picture: a person standing still jumps 30 px (no overlap with
    the box a frame ago). Told the turn's homography (compensate), the tracker moves its boxes there first and
    keeps the id; not told, it starts a new track."""
    shift = np.array([[1.0, 0.0, 30.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    ids = []
    for told in (True, False):
        tracker = Tracker(TrackerConfig(min_hits=1))
        first = tracker.update([det(100, 100, size=20)], 0.0)
        if told:
            tracker.compensate(shift)
        second = tracker.update([det(130, 100, size=20)], DT)
        ids.append(([t.track_id for t in first], sorted(t.track_id for t in second if t.last_seen == DT)))
    assert ids[0] == ([1], [1])
    assert ids[1] == ([1], [2])
    with pytest.raises(BadInputError):
        Tracker(TrackerConfig()).compensate(np.full((3, 3), np.nan))


_LOOK = np.eye(64)[0]


def _person(box: list[float], look: bool = True) -> Detection:
    return Detection(box=np.array(box, float), label="person", score=0.9, is_dynamic=True,
                     appearance=_LOOK.copy() if look else None)


_30_HZ_DT = 1 / 30


def _jittery_person_at_30_hz() -> tuple[Tracker, TrackInfo, int]:
    """A standing person seen for 11 frames at 30 Hz, the last box jittered by 2-4 px: the tracker, the person's
    track, and the frames seen (the next frame's index)."""
    tr = Tracker(TrackerConfig(min_hits=2, max_age_s=2.0, reid_max_age_s=10.0, reid_refresh_frames=1))
    boxes = [[300, 200, 340, 300]] * 10 + [[302, 203, 338, 296]]
    for k, b in enumerate(boxes):
        (track,) = tr.update([_person(b)], k * _30_HZ_DT)
    return tr, track, len(boxes)


def test_a_jittery_box_hidden_a_while_is_never_published_inside_out() -> None:
    """A standing person at 30 Hz whose last box jittered by 2-4 px: its corners' velocities shrank the unmatched
    box to nothing in half a second and then turned it inside out (x2 < x1), and it was published so. (Since the
    velocity is smoothed per 0.1 s, not per frame, that person keeps its id when back: the test below.)"""
    tr, _, seen = _jittery_person_at_30_hz()
    published = []
    for k in range(seen, seen + 50):
        published += [t.box for t in tr.update([], k * _30_HZ_DT)]
    assert len(published) == 50
    assert all(b[2] - b[0] >= 1.0 - 1e-9 and b[3] - b[1] >= 1.0 - 1e-9 for b in published), published[-1]


@pytest.mark.parametrize("hidden_frames", [15, 30])
def test_a_jittery_person_at_30_hz_keeps_its_id_after_half_a_second_hidden(hidden_frames: int) -> None:
    """The same person back where it stood after 0.5 s / 1 s unseen. Its one jittered frame (2-4 px in 1/30 s)
    weighed as much as a 10 Hz frame's estimate: the predicted box shrank by half in 0.5 s, failed the
    re-identification gate's height test, and the person got a new id."""
    tr, track, seen = _jittery_person_at_30_hz()
    for k in range(seen, seen + hidden_frames):
        tr.update([], k * _30_HZ_DT)
    out = tr.update([_person([300, 200, 340, 300])], (seen + hidden_frames) * _30_HZ_DT)
    assert [(t.track_id, t.state) for t in out] == [(track.track_id, TrackState.CONFIRMED)]


@pytest.mark.parametrize("hz", [10, 30, 50])
def test_velocity_smoothing_is_per_tenth_of_a_second_at_any_frame_rate(hz: int) -> None:
    """A 1 m/s walk from standing: 0.1 s into it the velocity is velocity_smoothing of the walk at any camera
    rate (per frame, 30 Hz read 0.875 of it and 50 Hz 0.97: as fast to react, and to jitter, as no smoothing)."""
    tracker = Tracker(TrackerConfig(min_hits=1, velocity_smoothing=0.5))
    stand = round(0.3 * hz)
    for k in range(stand + round(0.1 * hz) + 1):
        x = max(k - stand, 0) / hz  # m: still, then 1 m/s
        (track,) = tracker.update([det(100, 100, position=np.array([x, 0.0, 0.0]))], k / hz)
    np.testing.assert_allclose(track.velocity, [0.5, 0.0, 0.0], atol=1e-9)


def test_a_dropped_frame_at_10_hz_weighs_one_step() -> None:
    """A gap of missed frames is not more trusted than one frame (the weight is capped at one step): the 10 Hz
    figures measured before the weight became per 0.1 s stand."""
    tracker = Tracker(TrackerConfig(min_hits=1, velocity_smoothing=0.5, tentative_max_misses=3))
    for stamp, x in [(0.0, 0.0), (0.1, 0.0), (0.3, 0.2)]:  # 1 m/s over the 0.2 s gap
        (track,) = tracker.update([det(100, 100, position=np.array([x, 0.0, 0.0]))], stamp)
    np.testing.assert_allclose(track.velocity, [0.5, 0.0, 0.0], atol=1e-9)


def test_a_frame_gap_longer_than_max_age_still_embeds_for_re_identification() -> None:
    """needs_appearance judged by the tracks as they were; update() first sends one unmatched for longer than
    max_age_s dormant, and re-identifying it needs the look that was skipped: a camera stall of 2.5 s gave a
    lone, steady person a new id with the default lazy looks."""
    tr = Tracker(TrackerConfig(min_hits=1, max_age_s=2.0, reid_max_age_s=10.0, reid_refresh_frames=3))
    for k in range(5):
        need = tr.needs_appearance([_person([300, 200, 340, 300], False)], k * 0.1)
        (track,) = tr.update([_person([300, 200, 340, 300], bool(need[0]))], k * 0.1)
    stamp = 0.4 + 2.5
    need = tr.needs_appearance([_person([300, 200, 340, 300], False)], stamp)
    assert need.tolist() == [True]
    out = tr.update([_person([300, 200, 340, 300], True)], stamp)
    assert [t.track_id for t in out if t.last_seen == stamp] == [track.track_id]


def test_a_frame_two_ms_after_the_last_gives_no_velocity() -> None:
    """3 px of jitter over 2 ms (a bunched-up frame) read as 1,500 px/s: the next regular frame, back at the box,
    did not overlap the prediction and the person got a new track."""
    tr = Tracker(TrackerConfig(min_hits=1, max_age_s=2.0, reid=False))
    for k in range(5):
        (track,) = tr.update([_person([300, 200, 340, 300])], k * 0.1)
    tr.update([_person([303, 200, 343, 300])], 0.402)
    out = tr.update([_person([300, 200, 340, 300])], 0.5)
    assert [(t.track_id, t.state) for t in out] == [(track.track_id, TrackState.CONFIRMED)]
