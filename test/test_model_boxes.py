"""Motion boxes from the learned change mask (spatial_memory_ros.model.boxes): regions, and the whole agent
for a region cut by the image border."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spatial_memory_ros.core.tracker import box_iou
from spatial_memory_ros.model.boxes import BOTTOM_TRIM_CELLS, complete_at_border, mask_regions, side_fleck, trim_bottom

W, H = 320, 240
K = np.array([[250.0, 0.0, 160.0], [0.0, 250.0, 120.0], [0.0, 0.0, 1.0]])


def patrol_pose(pitch_deg: float = 45.0, height_m: float = 1.5) -> np.ndarray:
    """(4, 4) T_map_cam: optical frame looking along map +x, pitched down, height_m above the floor."""
    p = np.radians(pitch_deg)
    forward, right = np.array([np.cos(p), 0.0, -np.sin(p)]), np.array([0.0, -1.0, 0.0])
    T = np.eye(4)
    T[:3, :3] = np.column_stack([right, np.cross(forward, right), forward])
    T[:3, 3] = [0.0, 0.0, height_m]
    return T


def person(x: float, y: float, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(whole-outline box clipped to the image (4,), mask (H, W) uint8 of the part in view) of a 1.75 m
    cylinder of radius 0.25 m standing at (x, y): the sim's person and its truth box."""
    a = np.linspace(0.0, 2.0 * np.pi, 12, endpoint=False)
    ring = np.column_stack([x + 0.25 * np.cos(a), y + 0.25 * np.sin(a)])
    verts = np.vstack([np.column_stack([ring, np.zeros(12)]), np.column_stack([ring, np.full(12, 1.75)])])
    cam = (verts - T[:3, 3]) @ T[:3, :3]
    uv = cam[:, :2] / cam[:, 2:3] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    box = np.array([*np.maximum(uv.min(axis=0), 0.0), *np.minimum(uv.max(axis=0), [W, H])])
    mask = np.zeros((H, W), np.uint8)
    hull = np.round(cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2) * 16).astype(np.int32)
    cv2.fillPoly(mask, [hull], 255, cv2.LINE_8, 4)
    return box, mask


def test_mask_regions_one_per_region_largest_first() -> None:
    mask = np.zeros((H, W), np.uint8)
    mask[10:20, 10:20] = 255  # 100 px
    mask[50:80, 100:130] = 255  # 900 px
    mask[200:203, 300:303] = 255  # 9 px: below the minimum
    boxes = [box for box, _area in mask_regions(mask, min_area_px=50)]
    assert [b.tolist() for b in boxes] == [[100, 50, 130, 80], [10, 10, 20, 20]]


@pytest.mark.parametrize("x, y", [(4.0, 1.0), (4.3, -1.2)])
def test_agent_cut_by_the_top_border_is_boxed_whole(x: float, y: float) -> None:
    """Feet in view at the top of the image, body above it: the visible part's box misses the truth at
    IoU 0.5, the completed one matches it (and contains the visible part)."""
    T = patrol_pose()
    truth, mask = person(x, y, T)
    [(visible, _area)] = mask_regions(mask, 1)
    assert visible[1] == 0 and box_iou(truth[None], visible[None])[0, 0] < 0.5
    whole = complete_at_border(visible, K, T, W, H, height_m=1.4)
    assert box_iou(truth[None], whole[None])[0, 0] > 0.7
    assert (whole[:2] <= visible[:2]).all() and (whole[2:] >= visible[2:]).all()
    assert (whole >= 0).all() and whole[2] <= W and whole[3] <= H


@pytest.mark.parametrize("x, y", [(0.9, 0.0), (1.1, 0.4), (1.0, -0.6)])
def test_agent_beside_the_camera_seen_by_its_legs_is_boxed_whole(x: float, y: float) -> None:
    """Feet below the image, and a mask that holds only the legs (as the learned one often does next to the
    camera): standing the agent on the floor seen at the bottom row recovers its box."""
    T = patrol_pose(pitch_deg=30.0)
    truth, mask = person(x, y, T)
    assert truth[1] == 0 and truth[3] == H  # cut by the top and the bottom border
    mask[:170] = 0
    [(legs, _area)] = mask_regions(mask, 1)
    assert box_iou(truth[None], legs[None])[0, 0] < 0.3
    whole = complete_at_border(legs, K, T, W, H, height_m=1.4)
    assert box_iou(truth[None], whole[None])[0, 0] > 0.9
    assert (whole[:2] <= legs[:2]).all() and (whole[2:] >= legs[2:]).all()


def test_boxes_not_cut_or_without_floor_contact_are_kept() -> None:
    T = patrol_pose()
    inside = np.array([100.0, 80.0, 140.0, 160.0])
    assert np.array_equal(complete_at_border(inside, K, T, W, H, 1.4), inside)
    up = patrol_pose(pitch_deg=-30.0)  # looking up: even the bottom row is above the horizon
    cut_at_bottom = np.array([0.0, 120.0, 60.0, 240.0])
    assert np.array_equal(complete_at_border(cut_at_bottom, K, up, W, H, 1.4), cut_at_bottom)
    cut_at_top = np.array([100.0, 0.0, 140.0, 10.0])
    assert np.array_equal(complete_at_border(cut_at_top, K, T, W, H, 0.0), cut_at_top)  # 0 = off
    level = patrol_pose(pitch_deg=-30.0)  # looking up: the region's bottom is above the horizon
    assert np.array_equal(complete_at_border(cut_at_top, K, level, W, H, 1.4), cut_at_top)


def test_mask_regions_count_each_regions_pixels() -> None:
    mask = np.zeros((H, W), np.uint8)
    mask[50:80, 100:130] = 255  # 900 px
    cv2.line(mask, (10, 10), (40, 40), 255, 1)  # 31 px, diagonal: its box is 31 x 31
    found = mask_regions(mask, min_area_px=20)
    assert [(b.tolist(), a) for b, a in found] == [([100, 50, 130, 80], 900), ([10, 10, 41, 41], 31)]


@pytest.mark.parametrize("x, y", [(2.0, -1.4), (2.5, -1.6), (1.8, -1.2)])
def test_agent_entering_by_a_side_with_only_its_legs_in_the_mask_is_not_a_fleck(x: float, y: float) -> None:
    """A person cut by the right border whose mask holds only the bottom 25 rows: the region covers under a
    fifth of the completed height, but as a solid blob, so it stays an agent and its completion matches."""
    T = patrol_pose(pitch_deg=30.0)
    truth, mask = person(x, y, T)
    mask[: np.flatnonzero(mask.any(axis=1)).max() - 25] = 0
    [(legs, area)] = mask_regions(mask, 1)
    whole = complete_at_border(legs, K, T, W, H, height_m=1.4)
    assert legs[2] == W and (legs[3] - legs[1]) < 0.2 * (whole[3] - whole[1])
    assert not side_fleck(legs, area, whole, H)
    assert box_iou(truth[None], whole[None])[0, 0] > 0.9


def test_a_ragged_sliver_at_a_side_border_is_a_fleck_unless_it_touches_the_bottom() -> None:
    """A thin diagonal streak at the right border (a painted line the network marked, warehouse patrol 101):
    completion would stand a 200 px agent on it; it is a fleck. Thickened to a solid blob, or reaching the
    bottom border (where an agent beside the camera shows only its legs), it is not."""
    T = patrol_pose(pitch_deg=30.0)
    streak = np.zeros((H, W), np.uint8)
    cv2.line(streak, (304, 172), (319, 205), 255, 4)
    [(box, area)] = mask_regions(streak, 1)
    whole = complete_at_border(box, K, T, W, H, height_m=1.4)
    assert whole[1] < 1.0 and whole[3] - whole[1] > 5 * (box[3] - box[1])  # completion would make it an agent
    assert side_fleck(box, area, whole, H)
    solid = np.zeros((H, W), np.uint8)
    solid[172:206, 304:320] = 255
    [(box, area)] = mask_regions(solid, 1)
    assert not side_fleck(box, area, complete_at_border(box, K, T, W, H, 1.4), H)
    low = np.zeros((H, W), np.uint8)
    cv2.line(low, (304, H - 34), (319, H - 1), 255, 4)
    [(box, area)] = mask_regions(low, 1)
    assert box[3] == H and not side_fleck(box, area, complete_at_border(box, K, T, W, H, 1.4), H)


@pytest.mark.parametrize("x, y", [(3.5, 0.0), (4.0, 0.0), (4.0, 1.0)])
def test_a_region_reaching_below_the_feet_is_trimmed_to_them(x: float, y: float) -> None:
    """A person whose feet show near the top border, with a mask reaching 3 px below them (the network's
    masks do, BOTTOM_TRIM_CELLS): trimmed, the region's bottom is nearer the feet and its completed box
    matches the truth better."""
    T = patrol_pose()
    truth, mask = person(x, y, T)
    reach = mask.copy()
    for k in range(1, 4):
        reach[k:] = np.maximum(reach[k:], mask[:-k])
    [(box, _area)] = mask_regions(reach, 1)
    cell_px = 5.0  # a 320 x 240 image from a 64 x 48 mask
    trimmed = trim_bottom(box, cell_px, H)
    assert trimmed[3] == pytest.approx(box[3] - BOTTOM_TRIM_CELLS * cell_px)
    assert abs(trimmed[3] - truth[3]) < abs(box[3] - truth[3])
    assert np.array_equal(trimmed[:3], box[:3])
    iou = [box_iou(truth[None], complete_at_border(b, K, T, W, H, 1.4)[None])[0, 0] for b in (box, trimmed)]
    assert iou[1] > iou[0] + 0.03


def test_trim_keeps_a_region_cut_by_the_bottom_border_and_at_least_a_row() -> None:
    """A region cut by the bottom border has no feet in view: kept as it is. A one-row region keeps its row."""
    cut = np.array([100.0, 150.0, 140.0, float(H)])
    assert np.array_equal(trim_bottom(cut, 5.0, H), cut)
    thin = np.array([10.0, 30.0, 60.0, 31.0])
    assert trim_bottom(thin, 5.0, H)[3] == 31.0


def test_a_region_the_still_head_does_not_see_changed_is_no_agent() -> None:
    """The demo's painted line along the bottom border, brighter as the light changed, was a change-head region
    for four seconds that the still head (the frame against the background) did not mark: border completion made
    each sliver a full agent box, 15 false tracks. A region with under AGREE_SHARE of its pixels in the still
    head's mask goes; one at or over it stays whole, including its pixels outside that mask."""
    from spatial_memory_ros.model.boxes import AGREE_SHARE, agreed_regions

    own = np.zeros((120, 160), np.uint8)
    own[100:110, 0:100] = 255  # the line: 1,000 px
    own[20:60, 40:60] = 255  # an agent: 800 px
    corrected = np.zeros_like(own)
    corrected[20:56, 40:60] = 255  # 720 of the agent's 800 (0.9)
    corrected[100:110, 0:int(100 * AGREE_SHARE) - 1] = 255  # just under the share of the line
    kept = agreed_regions(own, corrected)
    assert kept.dtype == np.uint8 and not kept[100:110].any()
    assert (kept[20:60, 40:60] == 255).all() and int(kept.sum()) // 255 == 800
    corrected[100:110, 0:int(100 * AGREE_SHARE)] = 255  # at the share: kept
    assert (agreed_regions(own, corrected)[100:110, 0:100] == 255).all()
    assert not agreed_regions(np.zeros_like(own), corrected).any()
