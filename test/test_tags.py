"""TagDetector on synthetic renders with known geometry and on ViSP's real AprilTag photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tag_scene import make_intrinsics, pose, project_corners, render_scene

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.tags import TagDetector, render_tag
from spatial_memory_ros.core.types import CameraIntrinsics

TAG_SIZE = 0.16


def rotation_error_deg(R_a: np.ndarray, R_b: np.ndarray) -> float:
    rvec, _ = cv2.Rodrigues(R_a.T @ R_b)
    return float(np.degrees(np.linalg.norm(rvec)))


@pytest.mark.parametrize(
    "tag_id, rotvec_deg, t",
    [
        (0, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)),  # exactly fronto-parallel: IPPE's degenerate case
        (7, (25.0, -10.0, 5.0), (0.1, -0.05, 0.9)),
        (42, (-30.0, 20.0, 60.0), (-0.25, 0.1, 1.5)),
        (586, (0.0, 40.0, 170.0), (0.2, 0.15, 1.2)),
    ],
)
def test_synthetic_tag_pose(tag_id: int, rotvec_deg: tuple, t: tuple) -> None:
    intr = make_intrinsics()
    T_true = pose(rotvec_deg, t)
    image = render_scene(intr, [(tag_id, T_true)], TAG_SIZE)
    dets = TagDetector(TAG_SIZE).detect(image, intr)
    assert [d.tag_id for d in dets] == [tag_id]
    det = dets[0]
    true_corners = project_corners(T_true, TAG_SIZE, intr)
    # Tighter than the 1 px asked of a detector: a half-pixel convention slip must fail here.
    assert np.abs(det.corners - true_corners).max() < 0.25
    assert det.T_cam_tag is not None
    assert np.linalg.norm(det.T_cam_tag[:3, 3] - T_true[:3, 3]) < 0.02
    assert rotation_error_deg(det.T_cam_tag[:3, :3], T_true[:3, :3]) < 2.0
    assert det.reprojection_error_px < 0.5
    assert np.allclose(det.box, [*true_corners.min(axis=0), *true_corners.max(axis=0)], atol=1.0)


def test_several_tags_sorted_and_gray_input() -> None:
    intr = make_intrinsics()
    scene = [(12, pose((0, 0, 0), (0.25, 0, 1.2))), (3, pose((0, 0, 0), (-0.25, 0, 1.2)))]
    image = render_scene(intr, scene, TAG_SIZE)
    detector = TagDetector(TAG_SIZE)
    assert [d.tag_id for d in detector.detect(image, intr)] == [3, 12]
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert [d.tag_id for d in detector.detect(gray, intr)] == [3, 12]


def test_tag_at_the_image_border() -> None:
    intr = make_intrinsics()
    # 8 px from the top-left corner: the quiet zone is cut, and so is the refinement window.
    T = pose((0.0, 0.0, 5.0), (-0.44, -0.306, 1.0))
    (det,) = TagDetector(TAG_SIZE).detect(render_scene(intr, [(21, T)], TAG_SIZE), intr)
    assert det.box[0] < 15 and det.box[1] < 15
    assert np.abs(det.corners - project_corners(T, TAG_SIZE, intr)).max() < 0.25
    assert det.T_cam_tag is not None and np.linalg.norm(det.T_cam_tag[:3, 3] - T[:3, 3]) < 0.01


@pytest.mark.parametrize("t", [(-0.44, -0.306, 1.0), (0.2, 0.1, 1.0), (0.0, 0.0, 2.0)])
def test_fronto_parallel_pose_off_centre(t: tuple) -> None:
    """IPPE alone misses these by 3.6, 1.0 and 0.4 degrees (OpenCV 5.0); the pose must still be right."""
    intr = make_intrinsics()
    T = pose((0.0, 0.0, 0.0), t)
    (det,) = TagDetector(TAG_SIZE).detect(render_scene(intr, [(4, T)], TAG_SIZE), intr)
    assert det.T_cam_tag is not None
    assert rotation_error_deg(det.T_cam_tag[:3, :3], T[:3, :3]) < 0.2
    assert np.linalg.norm(det.T_cam_tag[:3, 3] - T[:3, 3]) < 0.005
    assert det.reprojection_error_px < 0.1


class _FindsNothing:
    def detectMarkers(self, image: np.ndarray) -> tuple:  # noqa: N802 - OpenCV's name
        return (), None, ()


def test_rough_corners_kept_when_refinement_finds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    intr = make_intrinsics()
    T = pose((20.0, 10.0, 0.0), (0.05, 0.0, 1.0))
    detector = TagDetector(TAG_SIZE)
    monkeypatch.setattr(detector, "_refiner", _FindsNothing())
    (det,) = detector.detect(render_scene(intr, [(2, T)], TAG_SIZE), intr)
    assert np.abs(det.corners - project_corners(T, TAG_SIZE, intr)).max() < 0.5
    assert det.T_cam_tag is not None and np.linalg.norm(det.T_cam_tag[:3, 3] - T[:3, 3]) < 0.02


# A thin quad the home patrol's finder returned (rough corners, 320 x 240 camera): OpenCV's IPPE gives NaN
# poses for it at a 0.12 m tag, which the detector once kept (a NaN tag pose crashed the pipeline).
_THIN_QUAD = np.array([[174.0, 35.0], [175.0, 50.0], [145.0, 50.0], [146.0, 35.0]])
_HOME_CAMERA = CameraIntrinsics(fx=250.0, fy=250.0, cx=160.0, cy=120.0, width=320, height=240)


def test_thin_quad_gives_a_finite_pose_or_none() -> None:
    T, err = TagDetector(0.12)._pose(_THIN_QUAD, _HOME_CAMERA)
    assert T is not None and np.isfinite(T).all() and err < 0.5  # SQPnP's pose, not IPPE's NaN


def test_nan_pnp_candidates_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    nan = np.full((3, 1), np.nan)
    monkeypatch.setattr(cv2, "solvePnPGeneric", lambda *a, **k: (2, (nan, nan), (nan, nan), None))
    detector = TagDetector(TAG_SIZE)
    T, err = detector._pose(_THIN_QUAD, _HOME_CAMERA)
    assert T is not None and np.isfinite(T).all() and np.isfinite(err)
    monkeypatch.setattr(cv2, "solvePnP", lambda *a, **k: (True, nan, nan))
    assert detector._pose(_THIN_QUAD, _HOME_CAMERA) == (None, pytest.approx(np.nan, nan_ok=True))


def test_intrinsics_opencv_cannot_solve_give_no_pose_not_an_error() -> None:
    """camera_info with fx = 1e12 (valid to the message) made SQPnP assert: every frame showing a tag dropped."""
    intr = make_intrinsics()
    image = render_scene(intr, [(5, pose((10, 0, 0), (0, 0, 1.0)))], TAG_SIZE)
    huge = CameraIntrinsics(fx=1e12, fy=1e12, cx=1e12, cy=120.0, width=intr.width, height=intr.height)
    (det,) = TagDetector(TAG_SIZE).detect(image, huge)
    assert det.tag_id == 5 and det.T_cam_tag is None


def test_without_intrinsics_no_pose() -> None:
    intr = make_intrinsics()
    image = render_scene(intr, [(5, pose((10, 0, 0), (0, 0, 1.0)))], TAG_SIZE)
    (det,) = TagDetector(TAG_SIZE).detect(image, None)
    assert det.tag_id == 5 and det.T_cam_tag is None and np.isnan(det.reprojection_error_px)


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_tags(kind: str) -> None:
    rng = np.random.default_rng(0)
    if kind == "blank":
        image = np.full((480, 640, 3), 200, np.uint8)
    else:
        image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert TagDetector(TAG_SIZE).detect(image, make_intrinsics()) == []


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((48, 64, 3), np.float32),
        np.zeros((48, 64, 3), np.uint16),
        np.zeros((48, 64, 4), np.uint8),
        np.zeros((2, 48, 64, 3), np.uint8),
        np.zeros((0, 64, 3), np.uint8),
        [[0, 1], [2, 3]],
    ],
    ids=["float32", "uint16", "4-channel", "4-dim", "empty", "list"],
)
def test_bad_image_raises(image: np.ndarray) -> None:
    with pytest.raises(BadInputError):
        TagDetector(TAG_SIZE).detect(image, None)


def test_render_tag() -> None:
    img = render_tag(3, 80)
    assert img.shape == (80, 80) and img.dtype == np.uint8
    assert (img[:10] == 0).all() and (img[:, -10:] == 0).all()  # one-cell black border
    assert set(np.unique(img)) == {0, 255}
    with pytest.raises(BadInputError):
        render_tag(587, 80)
    with pytest.raises(BadInputError):
        render_tag(1, 4)
    with pytest.raises(BadInputError):
        TagDetector(0.0)


# --- The real photo shipped with ViSP (Debian package visp-images-data). ---
VISP_DIR = Path("/usr/share/visp-images-data/ViSP-images/AprilTag")
# From ViSP's modules/detection/test/testAprilTag.cpp, which produced the ground truth files.
VISP_INTRINSICS = CameraIntrinsics(
    fx=615.1674805, fy=615.1675415, cx=312.1889954, cy=243.4373779, width=640, height=480
)
VISP_TAG_SIZE = 0.053


def _read_visp_ground_truth() -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """{id: (4, 2) corners (u, v) px}, {id: (4, 4) T_cam_tag}.

    The detection file lists each corner as "v u" (row, column); the pose file "tx ty tz tux tuy tuz"
    (m, theta-u rad).
    """
    corners: dict[int, np.ndarray] = {}
    tokens = (VISP_DIR / "ground_truth_detection.txt").read_text().split()
    for k in range(0, len(tokens), 9):
        corners[int(tokens[k].rsplit("_", 1)[1])] = np.array(tokens[k + 1 : k + 9], float).reshape(4, 2)[
            :, ::-1
        ]
    poses: dict[int, np.ndarray] = {}
    tokens = (VISP_DIR / "ground_truth_pose.txt").read_text().split()
    for k in range(0, len(tokens), 7):
        values = np.array(tokens[k + 1 : k + 7], float)
        T = np.eye(4)
        T[:3, :3], _ = cv2.Rodrigues(values[3:])
        T[:3, 3] = values[:3]
        poses[int(tokens[k].rsplit("_", 1)[1])] = T
    return corners, poses


def test_visp_real_photo() -> None:
    if not (VISP_DIR / "AprilTag.pgm").exists():
        pytest.skip(f"{VISP_DIR} missing: install the Debian package visp-images-data")
    image = cv2.imread(str(VISP_DIR / "AprilTag.pgm"), cv2.IMREAD_GRAYSCALE)
    gt_corners, gt_poses = _read_visp_ground_truth()
    dets = TagDetector(VISP_TAG_SIZE).detect(image, VISP_INTRINSICS)
    assert sorted(d.tag_id for d in dets) == sorted(gt_corners) == list(range(8, 20))
    # ViSP's tag frame is OpenCV's turned 180 degrees about z: its corners come in the order
    # (tr, tl, bl, br) of ours, and its rotation is ours times Rz(180). Its corners come from the
    # AprilTag library, whose pixel centres are at +0.5 from ours.
    R_z180 = np.diag([-1.0, -1.0, 1.0])
    for det in dets:
        ours_in_apriltag_convention = det.corners[[1, 0, 3, 2]] + 0.5
        assert np.abs(ours_in_apriltag_convention - gt_corners[det.tag_id]).max() < 0.5, det.tag_id
        T_gt = gt_poses[det.tag_id]
        assert det.T_cam_tag is not None
        assert np.linalg.norm(det.T_cam_tag[:3, 3] - T_gt[:3, 3]) < 0.005, det.tag_id
        assert rotation_error_deg(det.T_cam_tag[:3, :3] @ R_z180, T_gt[:3, :3]) < 1.0, det.tag_id
        assert det.reprojection_error_px < 1.0
