"""Track markers say how each position was measured; Track.msg's constants mirror PositionSource."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")
from builtin_interfaces.msg import Time  # noqa: E402

from spatial_memory_ros.core.types import PositionSource, TrackInfo, TrackState  # noqa: E402
from spatial_memory_ros.ros.markers import MarkerBuilder  # noqa: E402


def _track(track_id: int, source: PositionSource) -> TrackInfo:
    return TrackInfo(track_id=track_id, label="person", item="", state=TrackState.CONFIRMED, is_dynamic=True,
                     confidence=0.9, box=np.array([0.0, 0.0, 10.0, 20.0]), position=np.array([1.0, 2.0, 0.0]),
                     velocity=np.zeros(3), first_seen=0.0, last_seen=1.0, position_source=source)


def test_track_text_names_the_position_source() -> None:
    sources = [PositionSource.TAG, PositionSource.DEPTH, PositionSource.GROUND_PLANE]
    tracks = [_track(i + 1, s) for i, s in enumerate(sources)]
    markers = MarkerBuilder("map", 1.0).build(tracks, [], Time()).markers
    texts = sorted(m.text for m in markers if m.text)
    assert texts == ["#1 person [tag]", "#2 person [depth]", "#3 person [ground plane]"]


def test_msg_constants_mirror_position_source() -> None:
    from spatial_memory.msg import Track

    if not hasattr(Track, "POSITION_GROUND_PLANE"):
        pytest.skip("installed interfaces predate POSITION_GROUND_PLANE: re-run scripts/setup_venv.sh")
    for source in PositionSource:
        assert getattr(Track, f"POSITION_{source.name}") == int(source)


def test_track_spheres_and_labels_never_share_an_id() -> None:
    """The label of track n had id 1,000,000 + n in the spheres' namespace, which track 1,000,000 + n's sphere
    also took: RViz draws one marker per (ns, id), so one of the two vanished."""
    tracks = [_track(5, PositionSource.TAG), _track(1_000_005, PositionSource.TAG)]
    for ns in ("tracks", "tracks/front"):
        markers = MarkerBuilder("map", 1.0).build(tracks, [], Time(), track_ns=ns).markers
        keys = [(m.ns, m.id) for m in markers]
        assert len(keys) == len(set(keys)) == 4
        assert {m.ns for m in markers if m.text} == {"track_labels" + ns.removeprefix("tracks")}
        assert sorted(m.id for m in markers if m.text) == [5, 1_000_005]


def test_a_missing_items_last_sighting_is_drawn_grey_not_as_a_sighting() -> None:
    """Its place was seen empty: the cube there was drawn in the sighting blue, only the label said missing."""
    from spatial_memory_ros.core.types import ItemAnswer, ItemLocation

    here = ItemLocation(np.array([1.0, 2.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]), 1.0, 5.0, 10, 30.0)

    def cube_colour(**flags: bool) -> tuple[float, ...]:
        answer = ItemAnswer("mug", here, here, False, 0.0, [], **flags)
        (cube,) = [m for m in MarkerBuilder("map", 1.0).build([], [answer], Time()).markers if m.ns == "current"]
        return (cube.color.r, cube.color.g, cube.color.b, cube.color.a)

    seen = cube_colour()
    assert cube_colour(missing=True) != seen
    assert cube_colour(missing=True) == cube_colour(missing=True, current_inferred=True)


def test_markers_drawn_before_and_not_now_are_deleted_and_a_clear_deletes_all() -> None:
    """A track that ended, or items forgotten by reset_memory, stayed in RViz until their lifetime ran out: no
    DELETE was sent. Each camera's tracks are its own: the front camera's build must not delete the rear's."""
    from visualization_msgs.msg import Marker

    from spatial_memory_ros.core.types import ItemAnswer, ItemLocation

    here = ItemLocation(np.array([1.0, 2.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]), 1.0, 5.0, 10, 30.0)
    mug = ItemAnswer("mug", here, here, False, 0.0, [])
    builder = MarkerBuilder("map", 1.0)

    def deleted(array: object) -> set[tuple[str, int]]:
        return {(m.ns, m.id) for m in array.markers if m.action == Marker.DELETE and m.ns != "displaced"}

    assert deleted(builder.build([_track(1, PositionSource.TAG), _track(2, PositionSource.TAG)], [mug], Time(),
                                 track_ns="tracks/front")) == set()
    assert deleted(builder.build([_track(7, PositionSource.TAG)], [mug], Time(), track_ns="tracks/rear")) == set()
    ended = builder.build([_track(1, PositionSource.TAG)], [mug], Time(), track_ns="tracks/front")
    assert deleted(ended) == {("tracks/front", 2), ("track_labels/front", 2)}  # not the rear camera's track 7
    cleared = builder.clear(Time())
    assert all(m.action == Marker.DELETE for m in cleared.markers)
    assert {(m.ns, m.id) for m in cleared.markers} == {
        ("tracks/front", 1), ("track_labels/front", 1), ("tracks/rear", 7), ("track_labels/rear", 7),
        ("usual", 0), ("current", 0), ("item_labels", 0), ("displaced", 0)}
    assert deleted(builder.build([], [], Time())) == set()  # nothing left to delete after the clear


def test_an_items_label_clears_its_tracks_label() -> None:
    """The item label (z + 0.4) and its track's label (z + 0.3), 0.15 m tall each, overlapped."""
    from spatial_memory_ros.core.types import ItemAnswer, ItemLocation

    at = np.array([1.0, 2.0, 0.0])
    here = ItemLocation(at, np.array([0.0, 0.0, 0.0, 1.0]), 1.0, 5.0, 10, 30.0)
    markers = MarkerBuilder("map", 1.0).build([_track(1, PositionSource.TAG)], [ItemAnswer("mug", here, here, False,
                                                                                           0.0, [])], Time()).markers
    (track_label,) = [m for m in markers if m.ns == "track_labels"]
    (item_label,) = [m for m in markers if m.ns == "item_labels"]
    assert item_label.pose.position.z - track_label.pose.position.z >= track_label.scale.z
