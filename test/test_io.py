"""Offline readers (TUM folder, video, camera_info YAML) and result writers (MOT, masks, items.json)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from tum_scene import DEPTH_MM, INTRINSICS, T0, TAG_ID, gt_pose, stamp_name, tag_image, write_tum_folder

from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.core.types import (
    CameraIntrinsics,
    ItemAnswer,
    ItemLocation,
    TrackInfo,
    TrackState,
)
from spatial_memory_ros.io import open_input
from spatial_memory_ros.io.camera_yaml import camera_info_to_intrinsics, load_camera_yaml, save_camera_yaml
from spatial_memory_ros.io.outputs import (
    answer_to_dict,
    items_to_dict,
    mot_rows,
    write_change_mask,
    write_items_json,
)
from spatial_memory_ros.io.tum import TumReader
from spatial_memory_ros.io.video import VideoReader

# ---- TUM folder ----------------------------------------------------------------------------------------


def test_tum_reader_stamps_intrinsics_depth_and_poses(tmp_path: Path) -> None:
    stamps = write_tum_folder(tmp_path / "seq")
    reader = TumReader(tmp_path / "seq")
    frames = list(reader)

    assert len(reader) == len(frames) == 6
    assert [f.stamp for f in frames] == pytest.approx(stamps, abs=1e-6)
    assert frames[0].stamp == pytest.approx(T0, abs=1e-6)  # microseconds survive float64
    assert all(f.intrinsics == INTRINSICS for f in frames)
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8

    depth = frames[0].depth
    assert depth is not None and depth.dtype == np.float32 and depth.shape == (240, 320)
    assert np.isnan(depth[:10, :10]).all()  # 0 = no reading
    assert depth[100, 100] == pytest.approx(DEPTH_MM / 1000.0)
    assert frames[-1].depth is None  # its depth frame is 50 ms away: no association

    # groundtruth covers frames 0..3; interpolated (linear + slerp) between its 20 Hz samples
    for f in frames[:4]:
        assert f.T_map_cam is not None
        p, q = gt_pose(f.stamp)
        np.testing.assert_allclose(f.T_map_cam[:3, 3], p, atol=1e-6)
        np.testing.assert_allclose(f.T_map_cam[:3, :3], Rotation.from_quat(q).as_matrix(), atol=1e-6)
    assert frames[4].T_map_cam is None and frames[5].T_map_cam is None
    assert "groundtruth" in reader.map_frame


def test_tum_reader_optional_parts_and_depth_scale(tmp_path: Path) -> None:
    write_tum_folder(tmp_path, camera=False, groundtruth=False)
    frames = list(TumReader(tmp_path, depth_units_per_m=5000.0))  # the original TUM scale
    assert all(f.intrinsics is None and f.T_map_cam is None for f in frames)
    assert frames[0].depth is not None and frames[0].depth[100, 100] == pytest.approx(DEPTH_MM / 5000.0)
    assert "unknown" in TumReader(tmp_path).map_frame


def test_tum_listing_files_override_names(tmp_path: Path) -> None:
    stamps = write_tum_folder(tmp_path, depth=False)
    # rgb.txt gives its own stamps and order; its paths are relative to the folder
    names = [stamp_name(t) for t in stamps]
    (tmp_path / "rgb.txt").write_text(
        f"# color images\n# timestamp filename\n20.5 rgb/{names[3]}\n10.25 rgb/{names[0]}\n"
    )
    reader = TumReader(tmp_path)
    assert reader.stamps.tolist() == [10.25, 20.5]
    assert [f.T_map_cam for f in reader] == [None, None]  # outside the groundtruth span


def test_tum_bad_frames_are_reported_not_fatal(tmp_path: Path) -> None:
    stamps = write_tum_folder(tmp_path)
    (tmp_path / "rgb" / stamp_name(stamps[1])).write_bytes(b"not a png")
    bad: list[tuple[int, str]] = []
    good = [i for i, _ in TumReader(tmp_path).frames(lambda i, e: bad.append((i, str(e))))]
    assert good == [0, 2, 3, 4, 5]
    assert bad[0][0] == 1 and stamp_name(stamps[1]) in bad[0][1]
    with pytest.raises(BadInputError, match=stamp_name(stamps[1])):
        list(TumReader(tmp_path))  # without on_bad the error reaches the caller
    assert [i for i, _ in TumReader(tmp_path).frames(lambda i, e: None, limit=3)] == [0, 2]


def test_tum_depth_must_be_16_bit(tmp_path: Path) -> None:
    stamps = write_tum_folder(tmp_path)
    depth_file = tmp_path / "depth" / stamp_name(stamps[0] + 0.005)
    cv2.imwrite(str(depth_file), np.zeros((240, 320), np.uint8))
    with pytest.raises(BadInputError, match="16-bit"):
        TumReader(tmp_path)[0]


def test_tum_camera_yaml_must_match_image_size(tmp_path: Path) -> None:
    write_tum_folder(tmp_path)
    other = CameraIntrinsics(fx=500, fy=500, cx=319.5, cy=239.5, width=640, height=480)
    save_camera_yaml(other, tmp_path / "other.yaml")
    with pytest.raises(BadInputError, match="640x480"):
        TumReader(tmp_path, camera_yaml=tmp_path / "other.yaml")[0]


@pytest.mark.parametrize(
    "file, text, match",
    [
        ("groundtruth.txt", "# comment\n1 2 3\n", r"groundtruth.txt:2: expected"),
        ("groundtruth.txt", "1 0 0 0 0 0 0 0\n", r"groundtruth.txt:1: bad pose"),
        ("groundtruth.txt", "x 0 0 0 0 0 0 1\n", r"groundtruth.txt:1: 'x' is not a timestamp"),
        ("rgb.txt", "1.0\n", r"rgb.txt:1: expected"),
        ("camera.yaml", "image_width: 3\n", r"camera.yaml: image_height"),
    ],
)
def test_tum_corrupt_files_are_named(tmp_path: Path, file: str, text: str, match: str) -> None:
    write_tum_folder(tmp_path)
    (tmp_path / file).write_text(text)
    with pytest.raises(BadInputError, match=match):
        TumReader(tmp_path)


def test_tum_folder_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no TUM folder"):
        TumReader(tmp_path / "missing")
    with pytest.raises(BadInputError, match="no rgb/ folder"):
        TumReader(tmp_path)
    (tmp_path / "rgb").mkdir()
    with pytest.raises(BadInputError, match="no PNG images"):
        TumReader(tmp_path)
    (tmp_path / "rgb" / "frame1.png").write_bytes(b"")
    with pytest.raises(BadInputError, match=r"frame1.png.*rgb.txt"):
        TumReader(tmp_path)


# ---- video ---------------------------------------------------------------------------------------------


def write_video(path: Path, n: int = 5, fps: float = 10.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    assert writer.isOpened()
    for i in range(n):
        image = tag_image()
        cv2.putText(image, str(i), (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 255), 2)
        writer.write(image)
    writer.release()


def test_video_reader(tmp_path: Path) -> None:
    write_video(tmp_path / "v.avi")
    reader = VideoReader(tmp_path / "v.avi")
    frames = list(reader)
    assert len(reader) == len(frames) == 5
    assert [f.stamp for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert all(f.intrinsics is None for f in frames)
    assert all(f.T_map_cam is not None and np.array_equal(f.T_map_cam, np.eye(4)) for f in frames)
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    assert "camera optical frame" in reader.map_frame

    save_camera_yaml(INTRINSICS, tmp_path / "camera.yaml")
    reader = VideoReader(tmp_path / "v.avi", fps=25.0, camera_yaml=tmp_path / "camera.yaml")
    frames = [f for _, f in reader.frames(limit=3)]
    assert [f.stamp for f in frames] == pytest.approx([0.0, 0.04, 0.08])  # --fps overrides the container
    assert frames[0].intrinsics == INTRINSICS


def test_video_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no video file"):
        VideoReader(tmp_path / "missing.avi")
    (tmp_path / "junk.avi").write_bytes(b"\x00" * 100)
    with pytest.raises(BadInputError, match="cannot decode"):
        VideoReader(tmp_path / "junk.avi")
    write_video(tmp_path / "v.avi")
    save_camera_yaml(CameraIntrinsics(fx=1, fy=1, cx=0, cy=0, width=64, height=48), tmp_path / "small.yaml")
    with pytest.raises(BadInputError, match="64x48"):
        VideoReader(tmp_path / "v.avi", camera_yaml=tmp_path / "small.yaml")
    with pytest.raises(BadInputError, match="fps"):
        VideoReader(tmp_path / "v.avi", fps=0.0)
    from spatial_memory_ros.io import open_input

    with pytest.raises(BadInputError, match="it has no depth; drop --depth-scale"):
        open_input(tmp_path / "v.avi", depth_units_per_m=5000.0)
    assert len(open_input(tmp_path / "v.avi")) > 0


def test_a_video_cut_short_says_so_and_a_whole_one_does_not(tmp_path: Path) -> None:
    """A copy cut short decoded to its cut and the run reported success, "0 bad frames"."""
    write_video(tmp_path / "v.avi", n=40)
    told: list[tuple[int, BadInputError]] = []
    assert len(list(VideoReader(tmp_path / "v.avi").frames(lambda i, e: told.append((i, e))))) == 40 and not told
    data = (tmp_path / "v.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    frames = list(VideoReader(tmp_path / "cut.avi").frames(lambda i, e: told.append((i, e))))
    assert 0 < len(frames) < 40
    assert len(told) == 1 and told[0][0] == len(frames) and "of the 40 its header counts" in str(told[0][1])


def test_open_input_picks_the_reader(tmp_path: Path) -> None:
    write_tum_folder(tmp_path / "seq")
    write_video(tmp_path / "v.avi")
    assert isinstance(open_input(tmp_path / "seq"), TumReader)
    assert isinstance(open_input(tmp_path / "v.avi", fps=5.0), VideoReader)
    with pytest.raises(BadInputError, match="no input at"):
        open_input(tmp_path / "nothing")
    with pytest.raises(BadInputError, match="--fps"):
        open_input(tmp_path / "seq", fps=30.0)


# ---- camera_info YAML ----------------------------------------------------------------------------------

# As written by ROS camera_calibration (flow-style lists, rectification/projection present).
ROS_CAMERA_YAML = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [520.9, 0, 325.1, 0, 521.0, 249.7, 0, 0, 1]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.2312, -0.7849, -0.0033, -0.0001, 0.9172]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [520.9, 0, 325.1, 0, 0, 521.0, 249.7, 0, 0, 0, 1, 0]
"""


def test_camera_yaml_reads_ros_calibration(tmp_path: Path) -> None:
    (tmp_path / "cam.yaml").write_text(ROS_CAMERA_YAML)
    k = load_camera_yaml(tmp_path / "cam.yaml")
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (520.9, 521.0, 325.1, 249.7, 640, 480)
    assert k.distortion == (0.2312, -0.7849, -0.0033, -0.0001, 0.9172)


RATIONAL_8 = tuple(float(v) for v in np.linspace(-0.1, 0.1, 8))


@pytest.mark.parametrize("distortion", [(), (0.1, -0.2, 0.001, 0.002, 0.05), RATIONAL_8])
def test_camera_yaml_round_trip(tmp_path: Path, distortion: tuple[float, ...]) -> None:
    k = CameraIntrinsics(fx=612.5, fy=611.25, cx=320.25, cy=241.75, width=640, height=480,
                         distortion=distortion)
    save_camera_yaml(k, tmp_path / "cam.yaml")
    assert load_camera_yaml(tmp_path / "cam.yaml") == k


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.pop("camera_matrix"), "camera_matrix"),
        (lambda d: d.update(image_width=0), "image_width"),
        (lambda d: d["camera_matrix"].update(rows=2), "3x3"),
        (lambda d: d["camera_matrix"]["data"].__setitem__(0, -1.0), "fx"),
        (lambda d: d["camera_matrix"]["data"].__setitem__(1, "a"), "numbers"),
        (lambda d: d.update(distortion_model="equidistant"), "equidistant"),
        (lambda d: d["distortion_coefficients"].update(cols=3, data=[0.1, 0.2, 0.3]), "distortion must be"),
        (lambda d: d["distortion_coefficients"].update(cols=4), "says 1x4"),
        # YAML reads .inf and .nan as numbers: they reached every lifted point and the learned model's memory
        (lambda d: d["camera_matrix"]["data"].__setitem__(0, float("inf")), "all finite"),
        (lambda d: d["camera_matrix"]["data"].__setitem__(2, float("nan")), "all finite"),
        (lambda d: d["distortion_coefficients"]["data"].__setitem__(0, float("nan")), "finite numbers"),
    ],
)
def test_camera_yaml_errors(edit, match: str) -> None:
    import yaml

    data = yaml.safe_load(ROS_CAMERA_YAML)
    edit(data)
    with pytest.raises(BadInputError, match=match):
        camera_info_to_intrinsics(data)


def test_camera_yaml_file_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no camera calibration file"):
        load_camera_yaml(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("camera_matrix: [unclosed\n")
    with pytest.raises(BadInputError, match="bad.yaml"):
        load_camera_yaml(tmp_path / "bad.yaml")


# ---- writers -------------------------------------------------------------------------------------------


def track(track_id: int, state: TrackState, position: np.ndarray | None) -> TrackInfo:
    return TrackInfo(
        track_id=track_id, label="item", item="mug", state=state, is_dynamic=False, confidence=0.875,
        box=np.array([10.0, 20.5, 50.0, 100.0]), position=position, velocity=np.zeros(3),
        first_seen=0.0, last_seen=1.0,
    )


def test_mot_rows_format() -> None:
    tracks = [
        track(7, TrackState.CONFIRMED, None),
        track(2, TrackState.CONFIRMED, np.array([1.0, -2.0, 0.25])),
        track(3, TrackState.TENTATIVE, None),  # not claimed yet
        track(4, TrackState.LOST, None),  # only a predicted box
    ]
    assert mot_rows(12, tracks) == [
        "12,2,11.00,21.50,40.00,79.50,0.875,1.000,-2.000,0.250",  # 1-based pixels: box (10, 20.5) -> (11, 21.5)
        "12,7,11.00,21.50,40.00,79.50,0.875,-1,-1,-1",
    ]


@pytest.mark.filterwarnings("ignore:Operation with tuple")  # inside motmetrics, with pandas 3
def test_mot_file_loads_in_motmetrics(tmp_path: Path) -> None:
    mm = pytest.importorskip("motmetrics")
    from spatial_memory_ros.io.outputs import MotWriter

    with MotWriter(tmp_path / "tracks.txt") as w:
        w.write(1, [track(1, TrackState.CONFIRMED, None)])
        w.write(3, [track(1, TrackState.CONFIRMED, np.ones(3)), track(2, TrackState.CONFIRMED, None)])
    assert w.rows_written == 3
    df = mm.io.loadtxt(str(tmp_path / "tracks.txt"), fmt="mot15-2D")
    assert df.index.tolist() == [(1, 1), (3, 1), (3, 2)]
    assert df["Width"].tolist() == [40.0, 40.0, 40.0]


def test_change_mask_png(tmp_path: Path) -> None:
    mask = np.zeros((24, 32), np.uint8)
    mask[5:10, 5:10] = 255
    path = write_change_mask(tmp_path, 7, mask)
    assert path == tmp_path / "000007.png"
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), mask)
    with pytest.raises(BadInputError, match="uint8"):
        write_change_mask(tmp_path, 8, mask.astype(np.float32))


def location(x: float, dwell: float, conf: float = 0.5) -> ItemLocation:
    return ItemLocation(position=np.array([x, 0.0, 0.5]), orientation=np.array([0.0, 0.0, 0.0, 1.0]),
                        confidence=conf, last_seen=12.5, observations=4, dwell_s=dwell)


def answer(item: str) -> ItemAnswer:
    return ItemAnswer(item=item, usual=location(0.0, 30.0, 0.75), current=location(2.0, 1.0, float("nan")),
                      displaced=True, distance_m=2.0, alternatives=[location(2.0, 10.0, 0.25)])


def test_answer_to_dict() -> None:
    d = answer_to_dict(answer("mug"))
    assert d["item"] == "mug" and d["frame_id"] == "map"
    assert d["usual"] == {
        "position": [0.0, 0.0, 0.5], "orientation": [0.0, 0.0, 0.0, 1.0], "confidence": 0.75,
        "last_seen": 12.5, "observations": 4, "dwell_s": 30.0,
    }
    assert d["current"]["confidence"] is None  # NaN is not JSON
    assert d["displaced"] is True and d["distance_m"] == 2.0
    assert [a["dwell_s"] for a in d["alternatives"]] == [10.0]
    json.dumps(d, allow_nan=False)


def test_items_json(tmp_path: Path) -> None:
    write_items_json(tmp_path / "items.json", [answer("pallet_A"), answer("mug")], map_frame="test frame")
    doc = json.loads((tmp_path / "items.json").read_text())
    assert doc["frame_id"] == "map" and doc["map_frame"] == "test frame"
    assert [i["item"] for i in doc["items"]] == ["mug", "pallet_A"]
    assert doc["items"][0] == answer_to_dict(answer("mug"))
    assert items_to_dict([]) == {"frame_id": "map", "units": doc["units"], "items": []}


def test_tag_is_detectable_in_fixture() -> None:
    """The fixture's tag must be a real 36h11 tag, or the end-to-end runs prove nothing."""
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    _, ids, _ = cv2.aruco.ArucoDetector(dictionary).detectMarkers(tag_image())
    assert ids is not None and ids.ravel().tolist() == [TAG_ID]


def test_items_json_is_replaced_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It was written in place: a Ctrl-C or a full disk mid-write left half a JSON file."""
    from spatial_memory_ros.core import atomic_file
    from spatial_memory_ros.io import outputs

    path = tmp_path / "items.json"
    outputs.write_items_json(path, [])
    before = path.read_text()

    def disk_full(fd: int) -> None:  # the data are written but cannot be flushed: the write failed half way
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_file.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        outputs.write_items_json(path, [answer("mug")])
    monkeypatch.undo()
    assert path.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["items.json"]


def test_the_writable_probe_and_the_writers_leave_a_users_tmp_file_alone(tmp_path: Path) -> None:
    """Both wrote and removed PATH.tmp: a file of that name beside the output (a user's own) was deleted."""
    from spatial_memory_ros.io.outputs import check_writable

    theirs = tmp_path / "items.json.tmp"
    theirs.write_text("mine")
    check_writable(tmp_path / "items.json", "--json file")
    write_items_json(tmp_path / "items.json", [answer("mug")])
    assert theirs.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.json", "items.json.tmp"]


def test_items_json_keeps_the_mode_a_file_would_have(tmp_path: Path) -> None:
    """Written through a mkstemp file (600) and renamed: items.json and the model files became owner-only, so a
    node running as another user could not read them."""
    import os

    path = tmp_path / "items.json"
    old = os.umask(0o022)
    try:
        write_items_json(path, [answer("mug")])
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o640)
        write_items_json(path, [answer("mug")])  # a file there: its mode is kept
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
