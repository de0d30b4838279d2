"""The learned tag reader (model.tag_reader): tags the AprilTag decoder gives up on, read as configured items."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the model needs it; without it the rest of the suite still runs

from spatial_memory_ros.core.config import DetectorConfig, LiftingConfig, MemoryConfig, PipelineConfig, TagConfig  # noqa: E402
from spatial_memory_ros.core.errors import BadInputError  # noqa: E402
from spatial_memory_ros.core.item_memory import ItemMemory  # noqa: E402
from spatial_memory_ros.core.pipeline import Pipeline  # noqa: E402
from spatial_memory_ros.core.tags import TagDetector  # noqa: E402
from spatial_memory_ros.core.types import CameraIntrinsics, Frame, PositionSource  # noqa: E402
from spatial_memory_ros.model.tag_reader import (  # noqa: E402
    CROP_PX,
    TagRead,
    TagReader,
    cell_variants,
    normalise,
    tag_cells,
    warp_quad,
)
from spatial_memory_ros.model.tag_reader_train import _targets, loss_fn  # noqa: E402

IDS = list(range(100, 118))  # the warehouse scene's 18 items
W, H = 320, 240
TAG_PX = 28  # the tag's black border edge in the image
BLUR_PX = 9  # horizontal motion blur: a patrolling camera's smear


def _blurred_tag_image(tag_id: int, blur_px: int = BLUR_PX) -> tuple[np.ndarray, np.ndarray]:
    """A grey floor with a white board holding tag tag_id, smeared sideways; (BGR image, tag corners (4, 2))."""
    image = np.full((H, W), 110, np.uint8)
    board = TAG_PX * 3 // 2
    x0, y0 = 140, 100
    image[y0 - (board - TAG_PX) // 2: y0 + TAG_PX + (board - TAG_PX) // 2,
          x0 - (board - TAG_PX) // 2: x0 + TAG_PX + (board - TAG_PX) // 2] = 235
    d = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    tag = d.generateImageMarker(tag_id, TAG_PX)
    image[y0:y0 + TAG_PX, x0:x0 + TAG_PX] = np.where(tag > 127, 235, 20).astype(np.uint8)
    if blur_px > 1:
        image = cv2.filter2D(image, -1, np.full((1, blur_px), 1.0 / blur_px))
    corners = np.array([[x0, y0], [x0 + TAG_PX, y0], [x0 + TAG_PX, y0 + TAG_PX], [x0, y0 + TAG_PX]], np.float64)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), corners


def test_tag_cells_are_the_dictionarys_data_cells() -> None:
    cells = tag_cells(105)
    assert cells.shape == (6, 6) and set(np.unique(cells)) <= {0.0, 1.0}
    d = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    upscaled = d.generateImageMarker(105, 80)  # 10 px a cell: sample each cell's centre
    sampled = (upscaled[15::10, 15::10][:6, :6] > 127).astype(np.float32)
    assert np.array_equal(cells, sampled)
    variants = cell_variants(cells)
    assert variants.shape == (8, 6, 6) and len({v.tobytes() for v in variants}) == 8


def test_the_loss_does_not_care_which_corner_comes_first() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 37)
    ids = np.array([101, 107, -1])
    targets = _targets(ids)
    is_tag = torch.tensor([1.0, 1.0, 0.0])
    # the cells of a rotated crop are the rotated cells: the loss takes the best order, so it is the same
    rotated = logits.clone()
    rotated[:, :36] = torch.rot90(logits[:, :36].reshape(3, 6, 6), 1, dims=(1, 2)).reshape(3, 36)
    assert torch.isclose(loss_fn(logits, targets, is_tag), loss_fn(rotated, targets, is_tag), atol=1e-6)
    # and a net that states the right cells scores far lower than one that states wrong ones
    right = torch.cat([(targets[:, 0] * 2 - 1) * 8, torch.tensor([[8.0], [8.0], [-8.0]])], dim=1)
    assert loss_fn(right, targets, is_tag) < 0.01 < loss_fn(-right, targets, is_tag)


def test_the_decoder_gives_up_on_a_smeared_tag_and_the_reader_names_it() -> None:
    image, corners = _blurred_tag_image(105)
    tags, rejected = TagDetector(0.4).detect_with_rejected(image)
    assert not tags  # the smear defeats the decoder...
    sharp, _ = TagDetector(0.4).detect_with_rejected(_blurred_tag_image(105, blur_px=1)[0])
    assert [t.tag_id for t in sharp] == [105]  # ...not the drawing
    reader = TagReader(IDS)
    reads = reader.read(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), [corners])
    assert [r.tag_id for r in reads] == [105]
    assert reads[0].margin >= reader.min_margin and reads[0].misfit <= reader.max_misfit
    # in whichever order the finder gives the corners
    for k in (1, 2, 3):
        again = reader.read(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), [np.roll(corners, k, axis=0)])
        assert [r.tag_id for r in again] == [105]


def test_the_reader_names_only_configured_ids_and_nothing_that_is_not_a_tag() -> None:
    image, corners = _blurred_tag_image(105)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert TagReader([i for i in IDS if i != 105]).read(gray, [corners]) == []  # an unknown tag stays unread
    floor = np.full((H, W), 110, np.uint8)
    board = floor.copy()
    board[90:140, 130:180] = 235  # a white board with nothing on it
    noise = np.random.default_rng(3).integers(0, 256, (H, W), dtype=np.uint8)
    quad = np.array([[135, 95], [175, 95], [175, 135], [135, 135]], np.float64)
    for g in (floor, board, noise):
        assert TagReader(IDS).read(g, [quad]) == []


def test_warp_quad_puts_the_corners_on_the_crops_corners() -> None:
    """The quad's corners go to the crop's outer pixel edges in the order given. A quad on the outer edges of a
    CROP_PX-square block of pixels (pixel centres are integers) is then that block itself, pixel for pixel, and
    the same quad with its corners rolled by one is the block turned 90 deg (what training's rotations rely on).
    The block is noise, so a turn, a flip, a zoom or a half-pixel shift of the crop each shows."""
    image = np.zeros((H, W), np.uint8)
    x0, y0 = 64, 48
    block = np.random.default_rng(0).integers(0, 256, (CROP_PX, CROP_PX), dtype=np.uint8)
    image[y0:y0 + CROP_PX, x0:x0 + CROP_PX] = block
    left, top, right, bottom = x0 - 0.5, y0 - 0.5, x0 + CROP_PX - 0.5, y0 + CROP_PX - 0.5
    quad = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float64)
    crop = warp_quad(image, quad)
    assert crop.shape == (CROP_PX, CROP_PX)
    # within a grey level: the homography is fitted in float32, so samples land a hair off the pixel centres
    assert np.abs(crop.astype(int) - block).max() <= 1
    # rolled: the block's bottom-left corner goes to the crop's top-left, its top-left to the top-right
    rolled = warp_quad(image, np.roll(quad, 1, axis=0))
    assert np.abs(rolled.astype(int) - np.rot90(block, k=-1)).max() <= 1


def _config(**detector: object) -> PipelineConfig:
    return PipelineConfig(
        tags=TagConfig(tag_size_m=0.4, items={f"pallet_{i - 100}": i for i in IDS}),
        detector=replace(DetectorConfig(), **detector),  # type: ignore[arg-type]
        memory=MemoryConfig(db_path=":memory:"),
        lifting=LiftingConfig(),
    )


def _looking_down(height_m: float = 3.0) -> tuple[CameraIntrinsics, np.ndarray]:
    """A camera height_m above the map origin looking straight down (image x = map x, image y = -map y)."""
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[2, 3] = height_m
    return CameraIntrinsics(fx=250.0, fy=250.0, cx=W / 2, cy=H / 2, width=W, height=H), T


class _Reader:
    """Reads every quad it is given as tag 105, and records what it was given."""

    def __init__(self) -> None:
        self.given: list[np.ndarray] = []

    def read(self, gray: np.ndarray, quads: list[np.ndarray]) -> list[TagRead]:
        self.given += quads
        return [TagRead(105, q, 20.0, 0.0, 0.9) for q in quads[:1]]


def test_a_read_is_placed_where_its_quads_centre_ray_meets_the_floor() -> None:
    image, corners = _blurred_tag_image(105)
    intr, T = _looking_down()
    frame = Frame(image=image, stamp=1.0, intrinsics=intr, T_map_cam=T)
    with Pipeline(_config(), ItemMemory(MemoryConfig(db_path=":memory:"))) as off:
        assert off.update(frame).observations == []  # the decoder alone does not see the item
    reader = _Reader()
    with Pipeline(_config(), ItemMemory(MemoryConfig(db_path=":memory:")), tag_reader=reader) as on:
        first = on.update(frame)
        result = on.update(replace(frame, stamp=1.1))
    assert reader.given  # the finder's undecoded quads went to the reader
    assert [d for d in first.detections if d.item == "pallet_5"] == []  # one read alone is not trusted...
    read = [d for d in result.detections if d.item == "pallet_5"]  # ...a second one where the first put it is
    assert len(read) == 1 and read[0].position_source == PositionSource.GROUND_PLANE and not read[0].is_dynamic
    centre = reader.given[0].mean(axis=0)
    expected = np.array([(centre[0] - W / 2) * 3.0 / 250.0, -(centre[1] - H / 2) * 3.0 / 250.0, 0.0])
    assert read[0].position is not None
    np.testing.assert_allclose(read[0].position, expected, atol=1e-6)
    assert np.linalg.norm(expected[:2] - np.array([(corners.mean(axis=0)[0] - W / 2) * 0.012,
                                                   -(corners.mean(axis=0)[1] - H / 2) * 0.012])) < 0.1


class _Moving:
    """Reads the given quad as tag 105, its corners shifted by shift_px per call."""

    def __init__(self, shift_px: float) -> None:
        self.shift, self.calls = shift_px, 0

    def read(self, gray: np.ndarray, quads: list[np.ndarray]) -> list[TagRead]:
        self.calls += 1
        return [TagRead(105, quads[0] + self.shift * self.calls, 20.0, 0.0, 0.9)] if quads else []


@pytest.mark.parametrize(("shift_px", "gap_s", "counted"), [(0.0, 0.1, True), (0.0, 1.5, False), (30.0, 0.1, False)])
def test_a_read_counts_only_where_the_items_previous_read_agrees(shift_px: float, gap_s: float, counted: bool) -> None:
    """A wrong read names another item's place for one frame; two reads in a row agree on where the item is.
    30 px at 3 m and f = 250 px is 0.36 m per axis, 0.51 m in all: beyond the 0.5 m agreement."""
    image, _ = _blurred_tag_image(105)
    intr, T = _looking_down()
    with Pipeline(_config(), ItemMemory(MemoryConfig(db_path=":memory:")), tag_reader=_Moving(shift_px)) as p:
        p.update(Frame(image=image, stamp=1.0, intrinsics=intr, T_map_cam=T))
        second = p.update(Frame(image=image, stamp=1.0 + gap_s, intrinsics=intr, T_map_cam=T))
    assert any(d.item == "pallet_5" for d in second.detections) == counted


def test_quads_of_a_decoded_tag_never_reach_the_reader() -> None:
    image, _ = _blurred_tag_image(105, blur_px=1)  # sharp: decoded, and its board is a quad around it
    intr, T = _looking_down()
    reader = _Reader()
    with Pipeline(_config(), ItemMemory(MemoryConfig(db_path=":memory:")), tag_reader=reader) as p:
        result = p.update(Frame(image=image, stamp=1.0, intrinsics=intr, T_map_cam=T))
    assert [d.position_source for d in result.detections if d.item == "pallet_5"] == [PositionSource.TAG]
    assert reader.given == []


def test_on_a_patrol_the_reader_adds_right_sightings_the_decoder_missed() -> None:
    """30 s of a warehouse patrol on a training seed the reader was not trained on (1020 is held back by
    train-tag-reader): reads, each within 0.5 m of where the item it names truly is."""
    from spatial_memory_ros.bench.methods import pipeline_config, with_tag_reader
    from spatial_memory_ros.bench.scene import make_bench_scene
    from spatial_memory_ros.sim.scene import to_frame

    scene = make_bench_scene("warehouse", "patrol", 0.5, 1020, width=320, height=240)
    decoded, errors = 0, []
    with Pipeline.open(with_tag_reader(pipeline_config(scene))) as p:
        for f in scene.frames():
            for d in p.update(to_frame(f)).detections:
                if d.label != "item":
                    continue
                if d.position_source == PositionSource.TAG:
                    decoded += 1
                    continue
                assert d.position is not None
                errors.append(float(np.hypot(*(d.position[:2] - f.truth.items[d.item].position[:2]))))
    assert len(errors) >= 20 and decoded > 0  # 46 reads beside 76 decodes when written
    assert max(errors) <= 0.5, sorted(errors)[-5:]


def test_the_reader_needs_a_tag_map() -> None:
    with pytest.raises(BadInputError, match="learned_tag_reader"):
        replace(_config(learned_tag_reader=True), tags=TagConfig(tag_size_m=0.4)).validate()


def test_train_tag_reader_refuses_benchmark_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    from spatial_memory_ros.cli.main import main

    assert main(["train-tag-reader", "--seeds", "100-103"]) == 2
    assert "training seeds" in capsys.readouterr().err


def test_train_tag_reader_end_to_end_on_a_few_seconds(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from spatial_memory_ros.cli.main import main

    out = tmp_path / "reader.pt"
    code = main(["train-tag-reader", "--seeds", "1010-1013", "--minutes", "0.15", "--val-scenes", "1",
                 "--epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 0 and out.is_file()
    report = json.loads(capsys.readouterr().out)
    assert report["train_quads"] > 0 and report["val_seeds"] == [1013]
    assert TagReader(IDS, out).ids == IDS  # the weights load


def test_train_tag_reader_with_no_tag_in_view_says_so(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """Scenes too short to show a tag: a traceback from inside normalise (an empty batch)."""
    from spatial_memory_ros.cli.main import main

    out = tmp_path / "reader.pt"
    assert main(["train-tag-reader", "--seeds", "1010-1012", "--minutes", "0.0001", "--val-scenes", "1",
                 "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "none on a tag" in err and "Traceback" not in err and not out.exists()


def test_damaged_reader_weights_give_a_clear_error(tmp_path) -> None:
    """The shipped weights cut short, or a file that is not a reader's: BadInputError naming the file (a broken
    install says what is broken rather than torch's unpickling error)."""
    from spatial_memory_ros.model.tag_reader import DEFAULT_WEIGHTS

    cut = tmp_path / "cut.pt"
    cut.write_bytes(DEFAULT_WEIGHTS.read_bytes()[:100_000])
    with pytest.raises(BadInputError, match="damaged") as err:
        TagReader(IDS, cut)
    assert str(cut) in str(err.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(BadInputError, match="not a tag reader's weights"):
        TagReader(IDS, foreign)


def test_crops_reach_the_network_as_float32_whatever_numpy_promotes() -> None:
    """numpy 1 (apt's, under ROS) computes percentiles of float32 in float64 and kept the crops in it: the
    network's float32 weights then refused them (every read, not one)."""
    crops = np.random.default_rng(0).integers(0, 256, (3, CROP_PX, CROP_PX), dtype=np.uint8)
    x = normalise(crops)
    assert x.dtype == torch.float32 and x.shape == (3, 1, CROP_PX, CROP_PX)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
