"""ChangeDetector on small synthetic grey scenes with a known truth mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spatial_memory_ros.core.change import ChangeDetector
from spatial_memory_ros.core.config import ChangeConfig
from spatial_memory_ros.core.errors import BadInputError

H, W = 120, 160
SQUARE = (60, 40, 100, 80)  # x1, y1, x2, y2 of the object put down


def background(seed: int = 0) -> np.ndarray:
    """(H, W) float textured scene in 40..200: smooth blobs, like a room at low resolution."""
    coarse = np.random.default_rng(seed).uniform(40, 200, (H // 8, W // 8))
    return cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC).clip(40, 200)


def frame(scene: np.ndarray, rng: np.random.Generator, gain: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """(H, W, 3) uint8 BGR of a grey scene under a light (gain, offset), with sensor noise."""
    noisy = scene * gain + offset + rng.normal(0.0, 2.0, scene.shape)
    return cv2.cvtColor(noisy.clip(0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def with_square(scene: np.ndarray, box: tuple[int, int, int, int], value: float) -> np.ndarray:
    out = scene.copy()
    x1, y1, x2, y2 = box
    out[y1:y2, x1:x2] = value
    return out


def truth_mask(box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros((H, W), bool)
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = True
    return m


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def box_iou(a: np.ndarray, b: tuple) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def outside(mask: np.ndarray, box: tuple[int, int, int, int], margin: int = 4) -> int:
    """Changed pixels farther than margin from the box (blur spreads an edge by ~2 px)."""
    x1, y1, x2, y2 = box
    near = truth_mask((x1 - margin, y1 - margin, x2 + margin, y2 + margin))
    return int(((mask > 0) & ~near).sum())


def test_first_frame_is_empty() -> None:
    out = ChangeDetector(ChangeConfig()).update(frame(background(), np.random.default_rng(0)))
    assert out.mask.shape == (H, W) and out.mask.dtype == np.uint8 and not out.mask.any()
    assert out.motion_boxes == [] and out.camera_moved is False


@pytest.mark.parametrize("value", [235.0, 10.0], ids=["bright", "dark"])
@pytest.mark.parametrize("stable_frames", [3, 6])
def test_object_appears_then_becomes_background(value: float, stable_frames: int) -> None:
    rng = np.random.default_rng(1)
    scene = background()
    det = ChangeDetector(ChangeConfig(stable_frames=stable_frames))
    for _ in range(5):
        assert not det.update(frame(scene, rng)).mask.any()
    placed = with_square(scene, SQUARE, value)
    for k in range(stable_frames):
        out = det.update(frame(placed, rng))
        assert iou(out.mask > 0, truth_mask(SQUARE)) > 0.8, k
        assert outside(out.mask, SQUARE) == 0, k
        assert not out.camera_moved
    # Still for stable_frames frames after it arrived: absorbed into the reference.
    assert not det.update(frame(placed, rng)).mask.any()
    # Taking it away leaves a hole that is a change too, until it is absorbed in turn.
    out = det.update(frame(scene, rng))
    assert iou(out.mask > 0, truth_mask(SQUARE)) > 0.8 and outside(out.mask, SQUARE) == 0
    for _ in range(stable_frames):
        out = det.update(frame(scene, rng))
    assert not out.mask.any()


@pytest.mark.parametrize("gain, offset", [(0.6, 10.0), (1.3, -5.0), (1.0, 35.0), (0.5, 0.0)])
def test_global_brightness_change_is_not_a_change(gain: float, offset: float) -> None:
    rng = np.random.default_rng(2)
    scene = background()
    det = ChangeDetector(ChangeConfig())
    for _ in range(3):
        det.update(frame(scene, rng))
    for _ in range(3):  # the light switch, then the new light stays
        out = det.update(frame(scene, rng, gain, offset))
        assert (out.mask > 0).mean() < 0.005
        assert out.motion_boxes == [] and not out.camera_moved
    # An object put down under the new light is still found.
    out = det.update(frame(with_square(scene, SQUARE, 235.0), rng, gain, offset))
    assert iou(out.mask > 0, truth_mask(SQUARE)) > 0.8 and outside(out.mask, SQUARE) == 0


@pytest.mark.parametrize("speed", [3, 6])
def test_moving_square_gives_motion_box(speed: int) -> None:
    rng = np.random.default_rng(3)
    scene = background()
    det = ChangeDetector(ChangeConfig(min_blob_area_px=100))
    det.update(frame(scene, rng))
    for k in range(12):
        x = 20 + speed * k
        box = (x, 50, x + 30, 80)
        out = det.update(frame(with_square(scene, box, 230.0), rng))
        if k == 0:
            continue  # it appeared out of nowhere: a blob, but no motion history yet
        assert len(out.motion_boxes) == 1, k
        motion = out.motion_boxes[0]
        assert box_iou(motion, box) > 0.6, (k, motion, box)
        centre = (motion[:2] + motion[2:]) / 2
        assert np.abs(centre - [x + 15, 65]).max() <= speed + 2
        assert outside(out.mask, box, margin=4 + speed) == 0


def test_small_motion_is_ignored() -> None:
    rng = np.random.default_rng(4)
    scene = background()
    det = ChangeDetector(ChangeConfig(min_blob_area_px=150))
    det.update(frame(scene, rng))
    for k in range(4):
        out = det.update(frame(with_square(scene, (20 + 2 * k, 20, 26 + 2 * k, 26), 235.0), rng))
        assert out.motion_boxes == []


def _translated(dx: float) -> np.ndarray:
    T = np.eye(4)
    T[0, 3] = dx
    return T


def _rotated(deg: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], _ = cv2.Rodrigues(np.array([0.0, np.radians(deg), 0.0]))
    return T


@pytest.mark.parametrize("jump", [_translated(0.1), _rotated(5.0)], ids=["translation", "rotation"])
def test_camera_pose_jump_resets(jump: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    scene = background()
    det = ChangeDetector(ChangeConfig())
    for _ in range(3):
        det.update(frame(scene, rng), np.eye(4))
    # The new view differs only a little in the image here; the pose alone must trigger the reset.
    out = det.update(frame(with_square(scene, SQUARE, 235.0), rng), jump)
    assert out.camera_moved and not out.mask.any() and out.motion_boxes == []
    out = det.update(frame(with_square(scene, SQUARE, 235.0), rng), jump)
    assert not out.camera_moved and not out.mask.any()  # the new view is the reference now


def test_small_pose_jitter_does_not_reset() -> None:
    rng = np.random.default_rng(6)
    scene = background()
    det = ChangeDetector(ChangeConfig())
    det.update(frame(scene, rng), np.eye(4))
    out = det.update(frame(with_square(scene, SQUARE, 235.0), rng), _translated(0.01) @ _rotated(0.5))
    assert not out.camera_moved and iou(out.mask > 0, truth_mask(SQUARE)) > 0.8


@pytest.mark.parametrize("axis, shift", [(1, 25), (0, 12)], ids=["pan", "tilt"])
def test_view_change_without_pose_resets(axis: int, shift: int) -> None:
    rng = np.random.default_rng(7)
    # A busy scene: over plain surfaces a pan changes too few pixels to be told from a big object.
    coarse = np.random.default_rng(0).uniform(10, 245, (H // 6, W // 6))
    scene = cv2.resize(coarse, (W, H), interpolation=cv2.INTER_NEAREST)
    det = ChangeDetector(ChangeConfig())
    det.update(frame(scene, rng))
    out = det.update(frame(np.roll(scene, shift, axis=axis), rng))  # the camera turned, no pose says so
    assert out.camera_moved and not out.mask.any()


def test_size_change_resets() -> None:
    rng = np.random.default_rng(8)
    det = ChangeDetector(ChangeConfig())
    det.update(frame(background(), rng))
    out = det.update(np.zeros((60, 80, 3), np.uint8))
    assert out.camera_moved and out.mask.shape == (60, 80) and not out.mask.any()


def test_gray_input_and_reset() -> None:
    rng = np.random.default_rng(9)
    scene = background()
    det = ChangeDetector(ChangeConfig())
    det.update(cv2.cvtColor(frame(scene, rng), cv2.COLOR_BGR2GRAY))
    out = det.update(cv2.cvtColor(frame(with_square(scene, SQUARE, 235.0), rng), cv2.COLOR_BGR2GRAY))
    assert iou(out.mask > 0, truth_mask(SQUARE)) > 0.8
    det.reset()
    assert not det.update(frame(with_square(scene, SQUARE, 235.0), rng)).mask.any()


@pytest.mark.parametrize(
    "image, pose",
    [
        (np.zeros((H, W, 3), np.float32), None),
        (np.zeros((H, W, 4), np.uint8), None),
        (np.zeros((2, H, W, 3), np.uint8), None),
        (np.zeros((0, W, 3), np.uint8), None),
        (np.zeros((H, W, 3), np.uint8), np.eye(3)),
        (np.zeros((H, W, 3), np.uint8), np.full((4, 4), np.nan)),
    ],
    ids=["float", "4-channel", "4-dim", "empty", "pose-3x3", "pose-nan"],
)
def test_bad_input_raises(image: np.ndarray, pose: np.ndarray | None) -> None:
    with pytest.raises(BadInputError):
        ChangeDetector(ChangeConfig()).update(image, pose)


# ---- colour (change.colour_angle_deg) ----------------------------------------------------------------------

WHITE_CLOTH = (225.0, 225.0, 225.0)  # BGR
YELLOW_BOX = (40.0, 215.0, 235.0)  # BGR: grey level ~201 (cv2's weights), 24 below the cloth's 225


def colour_frame(rng: np.random.Generator, box: tuple[int, int, int, int] | None, gain: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8: a white cloth, optionally a yellow box on it, under a light gain, with sensor noise."""
    img = np.empty((H, W, 3), np.float64)
    img[:] = WHITE_CLOTH
    if box is not None:
        x1, y1, x2, y2 = box
        img[y1:y2, x1:x2] = YELLOW_BOX
    return (img * gain + rng.normal(0.0, 2.0, img.shape)).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("angle", [0.0, 8.0])
def test_a_yellow_box_on_a_white_cloth_is_a_change_only_by_its_colour(angle: float) -> None:
    # 24 grey levels from the cloth: under change.threshold 30, so grey levels alone miss it
    rng = np.random.default_rng(3)
    det = ChangeDetector(ChangeConfig(colour_angle_deg=angle))
    for _ in range(3):
        det.update(colour_frame(rng, None))
    out = det.update(colour_frame(rng, SQUARE))
    found = iou(out.mask > 0, truth_mask(SQUARE))
    if angle == 0:
        assert found < 0.1
    else:
        assert found > 0.9 and not out.camera_moved
        assert any(box_iou(b, SQUARE) > 0.8 for b in out.motion_boxes)  # and it is a moving blob


def test_a_light_dimming_a_coloured_scene_turns_no_colour() -> None:
    # The box was there all along; the light drops to 45 % (the home preset's lights off): a gain scales
    # every colour vector, so no pixel's colour turns, and the grey fit explains the brightness.
    rng = np.random.default_rng(4)
    det = ChangeDetector(ChangeConfig(colour_angle_deg=8.0))
    for _ in range(3):
        det.update(colour_frame(rng, SQUARE))
    for gain in (0.8, 0.6, 0.45, 0.45):
        out = det.update(colour_frame(rng, SQUARE, gain=gain))
        assert (out.mask > 0).mean() < 0.01 and not out.camera_moved, gain


def test_grey_frames_with_colour_on_use_grey_levels_only() -> None:
    rng = np.random.default_rng(5)
    det = ChangeDetector(ChangeConfig(colour_angle_deg=8.0))
    scene = background(5)
    for _ in range(3):
        det.update(frame(scene, rng)[..., 0])  # (H, W) grey
    out = det.update(frame(with_square(scene, SQUARE, 250.0), rng)[..., 0])
    assert iou(out.mask > 0, truth_mask(SQUARE)) > 0.8


def test_colour_angle_out_of_range_is_a_clear_error() -> None:
    from spatial_memory_ros.core.config import PipelineConfig

    with pytest.raises(BadInputError, match="colour_angle_deg"):
        PipelineConfig(change=ChangeConfig(colour_angle_deg=95.0)).validate()


def test_the_colour_test_of_a_large_frame_runs_on_a_smaller_copy_and_still_finds_the_box() -> None:
    # 640x480: the colour comparison runs at 320x240 and its mask is scaled back up
    rng = np.random.default_rng(6)
    big_h, big_w, box = 480, 640, (240, 160, 400, 320)

    def big(with_box: bool) -> np.ndarray:
        img = np.empty((big_h, big_w, 3), np.float64)
        img[:] = WHITE_CLOTH
        if with_box:
            img[box[1]:box[3], box[0]:box[2]] = YELLOW_BOX
        return (img + rng.normal(0.0, 2.0, img.shape)).clip(0, 255).astype(np.uint8)

    det = ChangeDetector(ChangeConfig(colour_angle_deg=8.0))
    for _ in range(3):
        det.update(big(False))
    out = det.update(big(True))
    truth = np.zeros((big_h, big_w), bool)
    truth[box[1]:box[3], box[0]:box[2]] = True
    assert out.mask.shape == (big_h, big_w) and iou(out.mask > 0, truth) > 0.9


def test_the_default_change_method_without_torch_is_refused_with_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default method is the learned one; where torch cannot be imported, building it fails with one line
    that says so and names classical, and classical still builds."""
    import sys

    from spatial_memory_ros.core.change_backend import make_change_backend

    monkeypatch.setitem(sys.modules, "spatial_memory_ros.model.runtime", None)  # its import now fails
    assert ChangeConfig().method == "learned"
    with pytest.raises(BadInputError, match=r"change.method learned needs torch .*use change.method classical"):
        make_change_backend(ChangeConfig())
    assert isinstance(make_change_backend(ChangeConfig(method="classical")), ChangeDetector)
