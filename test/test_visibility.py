"""core.visibility: when a tag that was not decoded counts as "not there" (in view, decodable, unoccluded)."""

from __future__ import annotations

import numpy as np
import pytest

from spatial_memory_ros.core.geometry import make_transform
from spatial_memory_ros.core.types import CameraIntrinsics, Frame, PlaceToCheck
from spatial_memory_ros.core.visibility import ViewCheckConfig, empty_places, tag_checkable, tag_corners_px

INTR = CameraIntrinsics(fx=300.0, fy=300.0, cx=159.5, cy=119.5, width=320, height=240)
TAG = 0.3  # m
UP = np.array([0.0, 0.0, 0.0, 1.0])  # a tag lying on the floor, facing up


def camera_looking_down(pitch_deg: float = 40.0, height_m: float = 1.5) -> np.ndarray:
    """T_map_cam: a camera at (0, 0, height) looking along +x, pitched down by pitch_deg."""
    # camera axes in the map: z (forward) = x tilted down, x (right) = -y, y (down) = z x x
    p = np.radians(pitch_deg)
    z = np.array([np.cos(p), 0.0, -np.sin(p)])
    x = np.array([0.0, -1.0, 0.0])
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.column_stack([x, y, z])
    T[:3, 3] = (0.0, 0.0, height_m)
    return T


CAM = camera_looking_down()
AHEAD = np.array([1.5 / np.tan(np.radians(40.0)), 0.0, 0.0])  # where the optical axis meets the floor


def test_a_tag_ahead_on_the_floor_projects_to_the_image_centre_and_is_checkable() -> None:
    projected = tag_corners_px(AHEAD, UP, TAG, CAM, INTR)
    assert projected is not None
    uv, z, tilt = projected
    assert np.allclose(uv.mean(axis=0), (INTR.cx, INTR.cy), atol=3.0)
    assert tilt == pytest.approx(50.0, abs=1.0)  # 90 - pitch: the floor is seen at 40 degrees
    assert np.all(z > 0)
    assert tag_checkable(AHEAD, UP, TAG, CAM, INTR)


@pytest.mark.parametrize(
    "where, why",
    [
        ((-2.0, 0.0, 0.0), "behind the camera"),
        ((AHEAD[0], 3.0, 0.0), "outside the image"),
        ((12.0, 0.0, 0.0), "too small and too grazing to decode"),
    ],
)
def test_places_the_camera_cannot_read_are_not_checked(where: tuple[float, float, float], why: str) -> None:
    assert not tag_checkable(np.array(where), UP, TAG, CAM, INTR), why


def test_grazing_views_are_not_checked_even_when_big_enough() -> None:
    flat = camera_looking_down(pitch_deg=15.0, height_m=0.5)
    ahead = np.array([0.5 / np.tan(np.radians(15.0)), 0.0, 0.0])
    assert tag_corners_px(ahead, UP, TAG, flat, INTR)[2] > 70.0  # type: ignore[index]
    assert not tag_checkable(ahead, UP, TAG, flat, INTR)
    assert tag_checkable(ahead, UP, TAG, flat, INTR, config=ViewCheckConfig(max_tilt_deg=89.0, min_side_px=1.0))


def test_an_occluder_box_or_nearer_depth_hides_the_place() -> None:
    uv, z, _ = tag_corners_px(AHEAD, UP, TAG, CAM, INTR)  # type: ignore[misc]
    over = np.array([[uv[:, 0].min() - 5, uv[:, 1].min() - 5, uv[:, 0].min() + 5, uv[:, 1].max()]])
    aside = np.array([[0.0, 0.0, 20.0, 20.0]])
    assert not tag_checkable(AHEAD, UP, TAG, CAM, INTR, occluder_boxes=over)
    assert tag_checkable(AHEAD, UP, TAG, CAM, INTR, occluder_boxes=aside)

    floor_depth = np.full((INTR.height, INTR.width), float(z.mean()), np.float32)
    assert tag_checkable(AHEAD, UP, TAG, CAM, INTR, depth=floor_depth)
    person = floor_depth.copy()
    person[:, 140:180] = 1.0  # something 1 m from the camera, in front of the tag
    assert not tag_checkable(AHEAD, UP, TAG, CAM, INTR, depth=person)
    unknown = np.full_like(floor_depth, np.nan)  # no depth is no evidence of an occluder
    assert tag_checkable(AHEAD, UP, TAG, CAM, INTR, depth=unknown)


@pytest.mark.parametrize(("hidden", "checkable"), [(0.0, True), (-0.04, True), (0.08, False), (0.5, False)])
def test_an_occluder_over_the_tags_rim_hides_the_place(hidden: float, checkable: bool) -> None:
    """Something in front of the tag's left `hidden` share (negative: that far left of the tag, not over it). The
    decoder needs the whole border; probes at the centre and the corners pulled 25 % inward missed a rim hidden to
    12 %, and the item sitting there was "seen empty" after five such frames."""
    uv, z, _ = tag_corners_px(AHEAD, UP, TAG, CAM, INTR)  # type: ignore[misc]
    left, right = float(uv[:, 0].min()), float(uv[:, 0].max())
    depth = np.full((INTR.height, INTR.width), float(z.mean()), np.float32)
    edge = int(np.floor(left + hidden * (right - left)))
    depth[:, : max(edge, 0)] = float(z.mean()) - 0.5  # a post 0.5 m in front of the tag
    assert tag_checkable(AHEAD, UP, TAG, CAM, INTR, depth=depth) == checkable


def test_a_depth_cameras_per_pixel_noise_does_not_hide_the_place() -> None:
    """Depth with 0.2 m of independent noise per pixel (a stereo camera at 4-5 m): one pixel in ten reads 0.25 m
    nearer than the tag. Read one pixel a probe, 25 probes found an "occluder" nearly every frame and the place was
    never checked; a probe reads its 3 x 3 median, as an occluder covers all of it and noise does not."""
    _, z, _ = tag_corners_px(AHEAD, UP, TAG, CAM, INTR)  # type: ignore[misc]
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(50):
        depth = float(z.mean()) + rng.normal(0.0, 0.2, (INTR.height, INTR.width)).astype(np.float32)
        checked += tag_checkable(AHEAD, UP, TAG, CAM, INTR, depth=depth)
    assert checked >= 40


def test_empty_places_skips_decoded_untagged_and_unseen_places() -> None:
    frame = Frame(np.zeros((INTR.height, INTR.width, 3), np.uint8), 1.0, INTR, CAM)
    candidates = [
        PlaceToCheck("mug", 0, AHEAD, UP),  # in view, not decoded: empty
        PlaceToCheck("keys", 0, AHEAD, UP),  # in view but decoded this frame (elsewhere): not empty
        PlaceToCheck("cup", 0, AHEAD, UP),  # a detector class, not a tag: a tag check says nothing
        PlaceToCheck("mug", 1, np.array([-2.0, 0.0, 0.0]), UP),  # behind the camera
    ]
    tagged = {"mug", "keys"}.__contains__
    assert empty_places(candidates, {"keys"}, tagged, TAG, frame, np.zeros((0, 4))) == [("mug", 0)]
    no_pose = Frame(frame.image, 1.0, INTR, None)
    assert empty_places(candidates, set(), tagged, TAG, no_pose, np.zeros((0, 4))) == []


def test_rotated_tag_orientation_is_used() -> None:
    standing = make_transform((0, 0, 0), (np.sin(np.pi / 4), 0.0, 0.0, np.cos(np.pi / 4)))  # z -> -y: upright
    q = np.array([np.sin(np.pi / 4), 0.0, 0.0, np.cos(np.pi / 4)])
    assert np.allclose(standing[:3, 2], (0.0, -1.0, 0.0))
    _, _, tilt_flat = tag_corners_px(AHEAD, UP, TAG, CAM, INTR)  # type: ignore[misc]
    _, _, tilt_standing = tag_corners_px(AHEAD, q, TAG, CAM, INTR)  # type: ignore[misc]
    assert tilt_standing == pytest.approx(90.0, abs=1.0)  # its face is edge-on to a camera looking along x
    assert tilt_flat == pytest.approx(50.0, abs=1.0)


def test_the_array_prefilter_refuses_only_places_the_exact_test_refuses() -> None:
    """empty_places skips, in one array operation, the places behind the camera or too far for any side to reach
    min_side_px (at thousands of places the per-place test took most of a frame). It must never skip one that
    tag_checkable would pass: 3,000 random places and orientations around the camera, some very near."""
    rng = np.random.default_rng(7)
    frame = Frame(np.zeros((INTR.height, INTR.width, 3), np.uint8), 1.0, INTR, CAM)
    positions = np.column_stack([rng.uniform(-3, 12, 3000), rng.uniform(-6, 6, 3000), rng.uniform(-0.5, 2.5, 3000)])
    quats = rng.normal(size=(3000, 4))
    quats[::2] = UP  # half of them lying on the floor, the likeliest to be in view
    candidates = [PlaceToCheck("mug", i, p, q / np.linalg.norm(q)) for i, (p, q) in enumerate(zip(positions, quats))]
    exact = [(c.item, c.place_id) for c in candidates
             if tag_checkable(c.position, c.orientation, TAG, CAM, INTR, occluder_boxes=np.zeros((0, 4)))]
    assert len(exact) > 10  # the scene does put some in view
    assert empty_places(candidates, set(), lambda item: True, TAG, frame, np.zeros((0, 4))) == exact


def test_a_tag_whose_back_faces_the_camera_is_not_checkable() -> None:
    """The tilt took |cos|: a tag facing away (its back seen: nothing to decode) counted as face-on, and five such
    frames made a still item "missing". A tag on the floor seen from below the floor is the same case."""
    down = np.array([1.0, 0.0, 0.0, 0.0])  # turned over: its face towards the floor
    assert tag_checkable(AHEAD, UP, TAG, CAM, INTR)
    projected = tag_corners_px(AHEAD, down, TAG, CAM, INTR)
    assert projected is not None and projected[2] >= 90.0
    assert not tag_checkable(AHEAD, down, TAG, CAM, INTR)
