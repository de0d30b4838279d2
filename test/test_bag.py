"""ROS 2 bags in `spatial-memory run`: the round trip (bag -> run == the same frames from a TUM folder), MCAP and
sqlite3, raw and compressed images, tf interpolation, depth, --out-bag, and clear errors. No rclpy needed."""

from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags is not installed")
from bag_scene import (  # noqa: E402
    CAMERA_FRAME,
    INTR,
    T_MAP_CAM,
    _transform,
    base_at,
    camera_info,
    depth_msg,
    image_msg,
    render,
    scene_frames,
    write_bag,
    write_messages,
    write_tum,
)
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag2 import StoragePlugin  # noqa: E402

from spatial_memory_ros.cli.main import main  # noqa: E402
from spatial_memory_ros.core.errors import BadInputError  # noqa: E402
from spatial_memory_ros.io import open_input  # noqa: E402
from spatial_memory_ros.io.bag import BagOptions, BagReader  # noqa: E402
from spatial_memory_ros.io.bag_topics import choose_topics  # noqa: E402
from spatial_memory_ros.io.bag_types import typestore  # noqa: E402
from spatial_memory_ros.ros.decode import compressed_to_bgr  # noqa: E402

ITEMS = ["--items", "mug=3"]


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`run` on the scene's frames from a TUM folder: what every bag variant must reproduce."""
    root = tmp_path_factory.mktemp("direct")
    write_tum(root / "tum", scene_frames())
    assert main(["run", str(root / "tum"), "--out", str(root / "out"), *ITEMS]) == 0
    return root / "out"


def _same_outputs(out: Path, expected: Path) -> None:
    assert (out / "tracks.txt").read_text() == (expected / "tracks.txt").read_text()
    items, want = (json.loads((d / "items.json").read_text()) for d in (out, expected))
    items.pop("map_frame"), want.pop("map_frame")  # says where the poses came from, in words
    assert items == want
    masks = sorted(p.name for p in (expected / "change_masks").glob("*.png"))
    assert sorted(p.name for p in (out / "change_masks").glob("*.png")) == masks
    for name in masks:
        assert np.array_equal(cv2.imread(str(out / "change_masks" / name)),
                              cv2.imread(str(expected / "change_masks" / name))), name


@pytest.mark.parametrize(("storage", "compressed"), [
    (StoragePlugin.MCAP, ""), (StoragePlugin.SQLITE3, ""), (StoragePlugin.MCAP, ".png"),
])
def test_bag_round_trip_matches_the_direct_run(tmp_path: Path, direct: Path, storage: StoragePlugin,
                                               compressed: str) -> None:
    bag = tmp_path / "bag"
    write_bag(bag, scene_frames(), storage=storage, compressed=compressed)
    assert main(["run", str(bag), "--out", str(tmp_path / "out"), *ITEMS]) == 0
    _same_outputs(tmp_path / "out", direct)
    items = json.loads((tmp_path / "out" / "items.json").read_text())
    mug = items["items"][0]
    assert mug["item"] == "mug" and mug["displaced"] and "tf_static" in items["map_frame"]


def test_a_bare_mcap_file_and_out_bag(tmp_path: Path, direct: Path) -> None:
    write_bag(tmp_path / "bag", scene_frames())
    mcap = tmp_path / "bag" / "bag.mcap"
    out_bag = tmp_path / "results"
    assert main(["run", str(mcap), "--out", str(tmp_path / "out"), *ITEMS, "--out-bag", str(out_bag)]) == 0
    _same_outputs(tmp_path / "out", direct)

    n_frames = len(scene_frames())
    with AnyReader([out_bag], default_typestore=typestore()) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts == {"/tracks": n_frames, "/change_mask": n_frames, "/markers": n_frames}
        by_topic: dict[str, list[tuple[int, object]]] = {}
        for conn, t, raw in reader.messages():
            by_topic.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    stamps = [int(round(t * 1e9)) for t, _ in scene_frames()]
    assert [t for t, _ in by_topic["/tracks"]] == [s + 1_000_000 for s in stamps]  # the images' log times
    last = by_topic["/tracks"][-1][1]
    assert last.header.frame_id == "map" and last.header.stamp.sec == int(stamps[-1] // 1e9)  # type: ignore[attr-defined]
    mug = [t for t in last.tracks if t.item == "mug"]  # type: ignore[attr-defined]
    assert mug and mug[0].position_source == 1 and abs(mug[0].position.x - (-0.35)) < 0.05
    mask = by_topic["/change_mask"][-1][1]
    assert (mask.encoding, mask.width, mask.header.frame_id) == ("mono8", INTR.width, CAMERA_FRAME)  # type: ignore[attr-defined]
    spaces = {m.ns for m in by_topic["/markers"][-1][1].markers}  # type: ignore[attr-defined]
    assert {"usual", "current", "displaced", "tracks"} <= spaces
    assert out_bag.joinpath("results.mcap").stat().st_size > 0 and (out_bag / "metadata.yaml").is_file()

    # a second run refuses to overwrite the bag, before doing any work
    assert main(["run", str(mcap), "--out", str(tmp_path / "out2"), "--out-bag", str(out_bag)]) == 2


def test_tf_is_interpolated_and_depth_aligned(tmp_path: Path) -> None:
    frames = scene_frames(4, 0)
    write_bag(tmp_path / "bag", frames, moving_tf=True, depth_m=0.9)
    reader = open_input(tmp_path / "bag")
    assert isinstance(reader, BagReader) and len(reader) == 4
    assert reader.topics.depth == "/camera/depth/image_raw"
    got = list(reader.frames())
    assert [i for i, _ in got] == [0, 1, 2, 3]
    for (t, image), (_, frame) in zip(frames, got, strict=True):
        assert frame.stamp == t and np.array_equal(frame.image, image)
        assert frame.intrinsics == dataclasses.replace(INTR, distortion=(0.0,) * 5)
        assert np.allclose(frame.T_map_cam, base_at(t) @ T_MAP_CAM, atol=1e-9)  # between two /tf samples
        assert frame.depth is not None and np.allclose(frame.depth, 0.9)
    assert reader.last_header is not None and reader.last_header.frame_id == CAMERA_FRAME


def test_a_rectified_image_topic_takes_its_intrinsics_from_p(tmp_path: Path) -> None:
    """--image-rectified (the node's image_rectified): camera_info's P, no distortion; without P, a clear error."""
    write_bag(tmp_path / "bag", scene_frames(2, 0))
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out"), "--image-rectified"]) == 0
    import argparse

    from spatial_memory_ros.cli.bag_args import add_bag_arguments, bag_options

    parser = argparse.ArgumentParser()
    add_bag_arguments(parser)  # the run above gives the same result either way (this bag's P is its K, D zero)
    assert bag_options(parser.parse_args(["--image-rectified"])) == BagOptions(image_rectified=True)
    reader = open_input(tmp_path / "bag", bag=BagOptions(image_rectified=True))
    for _, frame in reader.frames():
        assert frame.intrinsics == dataclasses.replace(INTR, distortion=())
    frames = scene_frames(1, 0)
    no_p = {"sensor_msgs/msg/CameraInfo": [(frames[0][0], dataclasses.replace(camera_info(frames[0][0]),
                                                                              p=np.zeros(12)))]}
    write_bag(tmp_path / "bag2", frames, with_camera_info=False, extra=no_p)  # on /extra/0
    with pytest.raises(BadInputError, match="no projection for the rectified image"):
        open_input(tmp_path / "bag2", bag=BagOptions(camera_info_topic="/extra/0", image_rectified=True))


def test_jpeg_frames_and_static_camera_without_tf(tmp_path: Path) -> None:
    frames = scene_frames(3, 0)
    write_bag(tmp_path / "bag", frames, compressed=".jpg", tf=False, image_topic="/cam/image_raw/compressed")
    reader = open_input(tmp_path / "bag")
    assert isinstance(reader, BagReader) and reader.topics.compressed
    assert "static camera" in reader.map_frame
    for (_, image), (_, frame) in zip(frames, reader.frames(), strict=True):
        assert np.abs(frame.image.astype(int) - image).mean() < 3  # lossy
        assert np.array_equal(frame.T_map_cam, np.eye(4))


def test_a_damaged_jpeg_frame_is_skipped_unless_the_check_is_off(tmp_path: Path) -> None:
    """A JPEG cut short with its end marker kept (OpenCV decodes it half grey) is a bad frame with the reason;
    `run --no-jpeg-check` (BagOptions.check_jpeg) reads it as OpenCV decodes it."""
    from spatial_memory_ros.ros.jpeg_damage import CHECKS_JPEG

    frames = scene_frames(6, 0)
    write_bag(tmp_path / "bag", frames, compressed=".jpg", tf=False, image_topic="/cam/image_raw/compressed")
    data = (tmp_path / "bag" / "bag.mcap").read_bytes()
    jpeg = cv2.imencode(".jpg", frames[4][1])[1].tobytes()  # frames 0-2 are alike; 4 has the person
    start = data.index(jpeg)
    cut = jpeg[: len(jpeg) // 2] + b"\xff\xd9"  # the same length: the rest of the message's data zeros
    data = data[:start] + cut + bytes(len(jpeg) - len(cut)) + data[start + len(jpeg):]
    (tmp_path / "bag" / "bag.mcap").write_bytes(data)
    bad: list[tuple[int, str]] = []
    got = [i for i, _ in BagReader(tmp_path / "bag").frames(lambda i, e: bad.append((i, str(e))))]
    if CHECKS_JPEG:
        assert got == [0, 1, 2, 3, 5] and bad[0][0] == 4 and "damaged JPEG" in bad[0][1]
    unchecked = BagReader(tmp_path / "bag", BagOptions(check_jpeg=False))
    assert [i for i, _ in unchecked.frames(lambda i, e: bad.append((i, str(e))))] == [0, 1, 2, 3, 4, 5]
    import argparse

    from spatial_memory_ros.cli.bag_args import add_bag_arguments, bag_options

    parser = argparse.ArgumentParser()
    add_bag_arguments(parser)
    assert bag_options(parser.parse_args(["--no-jpeg-check"])) == BagOptions(check_jpeg=False)
    assert bag_options(parser.parse_args([])) is None  # the default checks


def test_bad_frames_are_skipped_and_counted(tmp_path: Path) -> None:
    frames = scene_frames(6, 0)
    write_bag(tmp_path / "bag", frames, compressed=".png")
    # Corrupt the fifth frame's PNG in place: same size, so the bag stays readable.
    data = (tmp_path / "bag" / "bag.mcap").read_bytes()
    ok, png = cv2.imencode(".png", frames[4][1])  # frames 0-2 are alike; 4 has the person
    start = data.index(png.tobytes()[:64])
    data = data[:start + 40] + bytes(200) + data[start + 240:]
    (tmp_path / "bag" / "bag.mcap").write_bytes(data)
    bad: list[tuple[int, str]] = []
    got = [i for i, _ in BagReader(tmp_path / "bag").frames(lambda i, e: bad.append((i, str(e))))]
    assert got == [0, 1, 2, 3, 5] and bad[0][0] == 4 and "cannot decode compressed image" in bad[0][1]


def test_compressed_decoding() -> None:
    image = render(None, 40.0)

    class Msg:
        def __init__(self, fmt: str, data: bytes) -> None:
            self.format, self.data = fmt, data

    png = cv2.imencode(".png", image)[1].tobytes()
    assert np.array_equal(compressed_to_bgr(Msg("png", png)), image)
    assert np.array_equal(compressed_to_bgr(Msg("rgb8; png compressed rgb8", png)), image[:, :, ::-1])
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    assert compressed_to_bgr(Msg("jpeg", jpeg)).shape == image.shape
    _, msg = image_msg(image, 1.0, compressed=".jpg")  # a rosbags message: data is a numpy array
    assert compressed_to_bgr(msg).shape == image.shape
    for fmt, data, expected in [
        ("jpeg", b"", "empty compressed image"),
        ("jpeg", b"\xff\xd8 not really a jpeg" * 20, "cannot decode compressed image"),
        ("png", png[:100], "cannot decode compressed image"),
        ("16UC1; compressedDepth png", png, "compressed depth image"),
    ]:
        with pytest.raises(BadInputError, match=expected):
            compressed_to_bgr(Msg(fmt, data))


def test_a_compressed_image_declaring_a_huge_size_is_refused_before_decoding() -> None:
    """A PNG or JPEG header may declare any size in a few bytes: decoding 30,000 x 30,000 px took 2.7 GB."""
    from spatial_memory_ros.ros.compressed_size import declared_size

    image = render(None, 40.0)  # 640 x 480
    h, w = image.shape[:2]
    png = cv2.imencode(".png", image)[1].tobytes()
    jpegs = [cv2.imencode(".jpg", image, flags)[1].tobytes()
             for flags in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_OPTIMIZE, 1])]
    exif = jpegs[0][:2] + b"\xff\xe1" + (1002).to_bytes(2, "big") + bytes(1000) + jpegs[0][2:]  # an APP1 first
    for data in (png, *jpegs, exif):
        assert declared_size(data) == (w, h)
        assert declared_size(np.frombuffer(data, np.uint8)) == (w, h)  # a rosbags message's data
    assert declared_size(cv2.imencode(".bmp", image)[1].tobytes()) is None  # not parsed: OpenCV's limit holds
    assert declared_size(b"\xff\xd8\xff") is None and declared_size(png[:20]) is None

    class Msg:
        def __init__(self, fmt: str, data: bytes) -> None:
            self.format, self.data = fmt, data

    ihdr = png[12:29]  # "IHDR", 13 bytes of fields, then its CRC
    big = b"IHDR" + (30000).to_bytes(4, "big") + (30000).to_bytes(4, "big") + ihdr[12:17]
    bomb_png = png[:12] + big + zlib.crc32(big).to_bytes(4, "big") + png[33:]
    sof = exif.index(b"\xff\xc0")
    bomb_jpeg = exif[:sof + 5] + (30000).to_bytes(2, "big") + (30000).to_bytes(2, "big") + exif[sof + 9:]
    for fmt, data in (("png", bomb_png), ("jpeg", bomb_jpeg)):
        assert declared_size(data) == (30000, 30000)
        with pytest.raises(BadInputError, match="declares 30000 x 30000 px"):
            compressed_to_bgr(Msg(fmt, data))


def test_a_stray_byte_or_long_metadata_before_the_frame_header_does_not_skip_the_size_check() -> None:
    """libjpeg skips stray bytes between segments (some webcams send one on every frame) and reads metadata of any
    length: the size check read neither, and then decoded whatever size the header declared."""
    from spatial_memory_ros.ros.compressed_size import declared_size

    image = render(None, 40.0)
    h, w = image.shape[:2]
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    sof = jpeg.index(b"\xff\xc0")
    stray = jpeg[:sof] + b"\x00" + jpeg[sof:]
    long_app = jpeg[:2] + b"".join(b"\xff\xe2\xff\xff" + bytes(65533) for _ in range(20)) + jpeg[2:]  # 1.3 MB
    for data in (stray, long_app):
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (h, w, 3)  # libjpeg reads it
        assert declared_size(data) == (w, h)
        assert compressed_to_bgr(SimpleNamespace(format="jpeg", data=data), check_jpeg=False).shape == (h, w, 3)
        at = data.index(b"\xff\xc0")
        bomb = data[:at + 5] + (30000).to_bytes(2, "big") + (30000).to_bytes(2, "big") + data[at + 9:]
        with pytest.raises(BadInputError, match="declares 30000 x 30000 px"):
            compressed_to_bgr(SimpleNamespace(format="jpeg", data=bomb), check_jpeg=False)
    # a JPEG whose header never declares a size (its scan comes first) is refused before the codec runs
    no_frame = jpeg[:2] + jpeg[jpeg.index(b"\xff\xda"):]
    assert declared_size(no_frame) is None
    with pytest.raises(BadInputError, match="declares no size"):
        compressed_to_bgr(SimpleNamespace(format="jpeg", data=no_frame))


def test_an_exif_orientation_does_not_turn_the_frame() -> None:
    """compressed_image_transport decodes the pixels as sent; OpenCV's IMREAD_COLOR turns them by an EXIF
    orientation tag, so a frame no longer fitted camera_info (turned 180 degrees) or its size (90)."""
    image = np.zeros((40, 60, 3), np.uint8)
    image[:10, :10] = 255  # a white top-left corner
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    for orientation in (1, 3, 6, 8):
        tiff = b"MM\x00\x2a" + (8).to_bytes(4, "big") + (1).to_bytes(2, "big") + (0x0112).to_bytes(2, "big") \
            + (3).to_bytes(2, "big") + (1).to_bytes(4, "big") + orientation.to_bytes(2, "big") + bytes(2) + bytes(4)
        app1 = b"Exif\x00\x00" + tiff
        data = jpeg[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + jpeg[2:]
        turned = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if orientation != 1:  # the tag is read: OpenCV's default turns the frame
            assert turned.shape != (40, 60, 3) or turned[:5, :5].mean() < 50
        out = compressed_to_bgr(SimpleNamespace(format="jpeg", data=data))
        assert out.shape == (40, 60, 3)
        assert out[:5, :5].mean() > 200 and out[-5:, -5:].mean() < 50


TYPES = {
    "/cam/image_raw": "sensor_msgs/msg/Image", "/cam/depth/image_raw": "sensor_msgs/msg/Image",
    "/cam/camera_info": "sensor_msgs/msg/CameraInfo", "/tf": "tf2_msgs/msg/TFMessage",
}


def test_topic_choice() -> None:
    t = choose_topics(TYPES, BagOptions())
    assert (t.image, t.compressed, t.camera_info, t.depth, t.tf) == (
        "/cam/image_raw", False, "/cam/camera_info", "/cam/depth/image_raw", ["/tf"])
    two = {**TYPES, "/other/image_raw": "sensor_msgs/msg/Image", "/other/camera_info": "sensor_msgs/msg/CameraInfo"}
    with pytest.raises(BadInputError, match=r"candidates: /cam/image_raw, /other/image_raw.*--image-topic"):
        choose_topics(two, BagOptions())
    t = choose_topics(two, BagOptions(image_topic="/other/image_raw"))
    assert t.camera_info == "/other/camera_info"  # the image's sibling
    with pytest.raises(BadInputError, match=r"the bag has no topic /nope \(--image-topic\); its topics: /cam"):
        choose_topics(TYPES, BagOptions(image_topic="/nope"))
    with pytest.raises(BadInputError, match=r"/tf \(--compressed-topic\) is tf2_msgs/msg/TFMessage"):
        choose_topics(TYPES, BagOptions(compressed_topic="/tf"))
    no_info = {k: v for k, v in TYPES.items() if "camera_info" not in k}
    with pytest.raises(BadInputError, match="camera_info topic.*--camera"):
        choose_topics(no_info, BagOptions())
    assert choose_topics(no_info, BagOptions(), have_camera_yaml=True).camera_info is None


def test_missing_topics_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_bag(tmp_path / "bag", scene_frames(2, 0), with_camera_info=False)
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot tell which camera_info topic belongs to /camera/image_raw" in err and "--camera" in err
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "o"), "--image-topic", "/nope"]) == 2
    assert "the bag has no topic /nope" in capsys.readouterr().err
    write_tum(tmp_path / "tum", scene_frames(1, 0))
    assert main(["run", str(tmp_path / "tum"), "--out", str(tmp_path / "o"), "--image-topic", "/x"]) == 2
    assert "topic and frame options apply to bags only" in capsys.readouterr().err
    # --depth-scale was read for TUM folders only and ignored without a word elsewhere (a bag's 16UC1 depth stayed mm)
    write_bag(tmp_path / "with_info", scene_frames(2, 0))
    assert main(["run", str(tmp_path / "with_info"), "--out", str(tmp_path / "o"), "--depth-scale", "5000"]) == 2
    assert "drop --depth-scale" in capsys.readouterr().err


def test_frames_without_a_pose_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_bag(tmp_path / "bag", scene_frames(3, 0))
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out"), "--map-frame", "world"]) == 2
    err = capsys.readouterr().err
    assert "no camera pose world <- camera_optical" in err and "no frame of" in err


def test_out_bag_from_a_tum_folder(tmp_path: Path) -> None:
    """--out-bag works for any input; without the bag's headers the stamps come from the frames."""
    frames = scene_frames(3, 0)
    write_tum(tmp_path / "tum", frames)
    assert main(["run", str(tmp_path / "tum"), "--out", str(tmp_path / "out"), "--out-bag",
                 str(tmp_path / "res")]) == 0
    with AnyReader([tmp_path / "res"], default_typestore=typestore()) as reader:
        masks = [(t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages()
                 if c.topic == "/change_mask"]
    assert [t for t, _ in masks] == [int(round(t * 1e9)) for t, _ in frames]
    assert all(m.header.frame_id == "camera" for _, m in masks)  # type: ignore[attr-defined]


@pytest.mark.parametrize("form", ["folder", "bare file", "folder without metadata.yaml"])
def test_a_bag_cut_short_gives_the_frames_before_the_cut(tmp_path: Path, form: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A recorder killed mid-bag leaves an MCAP without its footer, which rosbags refuses, and (rosbag2 writes
    it on close) no metadata.yaml: the frames of its complete records are read (the same as the whole bag's
    first frames, with their poses), a warning says so, and the file is left as it was."""
    write_bag(tmp_path / "bag", scene_frames())
    whole = [(i, f.stamp, f.image, f.T_map_cam) for i, f in BagReader(tmp_path / "bag").frames()]
    mcap = tmp_path / "bag" / "bag.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 2 // 3])
    before = mcap.read_bytes()
    if form == "folder without metadata.yaml":
        (tmp_path / "bag" / "metadata.yaml").unlink()
    with caplog.at_level("WARNING"):
        reader = BagReader(mcap if form == "bare file" else tmp_path / "bag")
    assert "was cut short" in caplog.text and "messages of bag.mcap before the cut" in caplog.text
    assert ("has no metadata.yaml" in caplog.text) == (form == "folder without metadata.yaml")
    got = [(i, f.stamp, f.image, f.T_map_cam) for i, f in reader.frames()]
    assert 0 < len(got) < len(whole) and len(reader) == len(got)
    for (i, stamp, image, pose), (j, stamp2, image2, pose2) in zip(got, whole):
        assert (i, stamp) == (j, stamp2) and np.array_equal(image, image2) and np.allclose(pose, pose2)
    assert mcap.read_bytes() == before
    # the CLI runs it end to end
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out"), *ITEMS]) == 0
    assert len((tmp_path / "out" / "tracks.txt").read_text().splitlines()) > 0


@pytest.mark.parametrize(("metadata", "keep"), [(False, 2 / 3), (True, 2 / 3), (False, 100), (False, 0),
                                                (True, 100)])
def test_a_split_recording_whose_last_file_was_cut(tmp_path: Path, metadata: bool, keep: float | int,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A recorder splitting its bag (--max-bag-size) and killed in its third file: name_0 and name_1 whole,
    name_2 without its footer and, usually, no metadata.yaml. Every file is read, the cut one up to the cut:
    the same frames and poses as the whole recording's first ones. (rosbags alone refused the folder.) Killed
    just after it opened name_2 (100 bytes: the header, no message; or an empty file), the other two are read
    (the whole bag used to be refused)."""
    frames = scene_frames(n_at_a=14, n_at_b=10)
    write_bag(tmp_path / "whole", frames)
    whole = [(i, f.stamp, f.image, f.T_map_cam) for i, f in BagReader(tmp_path / "whole").frames()]
    split = tmp_path / "split"
    split.mkdir()
    for n, part in enumerate([frames[:8], frames[8:16], frames[16:]]):  # the static tf only in the first file
        write_bag(tmp_path / f"part{n}", part, tf=n == 0)
        (tmp_path / f"part{n}" / f"part{n}.mcap").rename(split / f"split_{n}.mcap")
    if metadata:  # the recorder wrote it at a split, then was killed: what it lists is left to rosbags
        (split / "metadata.yaml").write_text((tmp_path / "part0" / "metadata.yaml").read_text())
    last = split / "split_2.mcap"
    data = last.read_bytes()
    cut_at = int(len(data) * keep) if isinstance(keep, float) else keep  # a share of the file, or bytes
    last.write_bytes(data[:cut_at])
    with caplog.at_level("WARNING"):
        reader = BagReader(split)
    got = [(i, f.stamp, f.image, f.T_map_cam) for i, f in reader.frames()]
    if isinstance(keep, float):
        assert "was cut short" in caplog.text and "split_2.mcap before the cut" in caplog.text
        assert 16 < len(got) < len(whole) and len(reader) == len(got)
    else:
        assert "split_2.mcap was cut short before any complete message" in caplog.text
        assert "reading the recording's other files" in caplog.text
        assert len(got) == 16 and len(reader) == 16
    for (i, stamp, image, pose), (j, stamp2, image2, pose2) in zip(got, whole):
        assert (i, stamp) == (j, stamp2) and np.array_equal(image, image2) and np.allclose(pose, pose2)
    assert last.stat().st_size == cut_at  # only read


def test_split_index_orders_files_as_rosbag2_numbers_them() -> None:
    from spatial_memory_ros.io.bag_files import _split_index

    names = ["b_10.mcap", "b_2.mcap", "b_0.mcap", "b_1.mcap"]
    assert [n for n in sorted(names, key=lambda n: _split_index(Path(n)))] == [
        "b_0.mcap", "b_1.mcap", "b_2.mcap", "b_10.mcap"]


def test_bags_that_cannot_be_read_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Cut before its first message; a split SQLite recording without metadata.yaml (the fix is named); a
    metadata.yaml that is not text."""
    write_bag(tmp_path / "bag", scene_frames())
    mcap = tmp_path / "bag" / "bag.mcap"
    whole = mcap.read_bytes()
    mcap.write_bytes(whole[:200])
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 2
    assert "cut short before any complete message" in capsys.readouterr().err
    write_bag(tmp_path / "db3", scene_frames(), storage=StoragePlugin.SQLITE3)
    db3 = tmp_path / "db3" / "db3.db3"
    (tmp_path / "db3" / "db3_1.db3").write_bytes(db3.read_bytes())  # a split recording, never closed
    (tmp_path / "db3" / "metadata.yaml").unlink()
    assert main(["run", str(tmp_path / "db3"), "--out", str(tmp_path / "out")]) == 2
    assert "holds 2 bag files" in (err := capsys.readouterr().err) and "ros2 bag reindex" in err, err
    mcap.write_bytes(whole)
    (tmp_path / "bag" / "metadata.yaml").write_bytes(bytes(range(128, 256)))
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 2
    assert "its metadata.yaml is not text" in capsys.readouterr().err


def test_a_cut_in_a_record_header_or_a_zeroed_chunk_is_still_a_cut(tmp_path: Path) -> None:
    """The cut can fall in a record's 9-byte header (struct.error) or leave a compressed chunk zeroed (a power
    loss: zstd's or lz4's error): the complete chunks before it are read, not a traceback."""
    write_bag(tmp_path / "bag", scene_frames(14, 8))
    mcap = tmp_path / "bag" / "bag.mcap"
    data = mcap.read_bytes()
    chunks = _mcap_chunks(data)
    assert len(chunks) >= 3
    for name, cut in (("header", data[:chunks[2] + 4]),  # inside the third chunk's length field
                      ("zeroed", data[:chunks[2] + 60] + bytes(len(data) - chunks[2] - 60))):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "bag.mcap").write_bytes(cut)
        reader = BagReader(folder)
        assert 0 < len(list(reader.frames())) == len(reader), name


def test_a_message_that_does_not_decode_is_a_skipped_frame(tmp_path: Path) -> None:
    """A torn message (its CDR says more bytes follow than do) is counted like a frame that decodes badly, and the
    run goes on; it used to stop the run with rosbags' traceback."""
    from bag_scene import _transform, camera_info
    from rosbags.rosbag2 import Writer

    from spatial_memory_ros.io.bag_types import make

    store = typestore()
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as w:
        tf = w.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=store)
        info = w.add_connection("/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store)
        img = w.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
        links = [_transform("base_link", CAMERA_FRAME, T_MAP_CAM, 0.0), _transform("map", "base_link", np.eye(4), 0.0)]
        w.write(tf, 1, store.serialize_cdr(make("tf2_msgs/msg/TFMessage", transforms=links), "tf2_msgs/msg/TFMessage"))
        for i, (t, image) in enumerate(scene_frames(6, 0)):
            ns = int(round(t * 1e9))
            w.write(info, ns, store.serialize_cdr(camera_info(t), "sensor_msgs/msg/CameraInfo"))
            raw = store.serialize_cdr(image_msg(image, t)[1], "sensor_msgs/msg/Image")
            w.write(img, ns + 1_000_000, raw[:200] if i == 3 else raw)
    bad: list[tuple[int, str]] = []
    got = [i for i, _ in BagReader(tmp_path / "bag").frames(lambda i, e: bad.append((i, str(e))))]
    assert got == [0, 1, 2, 4, 5] and bad[0][0] == 3 and "does not decode" in bad[0][1]
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out"), *ITEMS]) == 0


def test_a_topic_recorded_with_two_types_is_read_as_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An image topic with an Image and a CompressedImage connection: the type with more messages is read, the
    other skipped with a warning (every Image used to be decoded as compressed: AttributeError)."""
    from rosbags.rosbag2 import Writer

    store = typestore()
    write_bag(tmp_path / "plain", scene_frames(6, 0))
    with AnyReader([tmp_path / "plain"], default_typestore=store) as reader, \
            Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {c.topic: w.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        image_topic = next(c.topic for c in reader.connections if c.msgtype == "sensor_msgs/msg/Image")
        packed = w.add_connection(image_topic, "sensor_msgs/msg/CompressedImage", typestore=store)
        for c, t, raw in reader.messages():
            w.write(conns[c.topic], t, raw)
        mt, m = image_msg(scene_frames(6, 0)[3][1], 0.35, compressed=".png")
        w.write(packed, int(0.35e9), store.serialize_cdr(m, mt))
    with caplog.at_level("WARNING"):
        reader = BagReader(tmp_path / "bag")
    assert "sensor_msgs/msg/CompressedImage): another type" in caplog.text
    assert not reader.topics.compressed and len(reader) == 6 and len(list(reader.frames())) == 6


def test_a_refused_out_bag_leaves_the_earlier_runs_masks(tmp_path: Path) -> None:
    write_bag(tmp_path / "bag", scene_frames(6, 0))
    args = ["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out"), "--out-bag", str(tmp_path / "res"), *ITEMS]
    assert main(args) == 0
    masks = sorted((tmp_path / "out" / "change_masks").iterdir())
    assert masks
    assert main(args) == 2  # --out-bag exists
    assert sorted((tmp_path / "out" / "change_masks").iterdir()) == masks


def test_a_split_recording_with_no_complete_message_in_any_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "split_0.mcap").write_bytes(b"")
    (tmp_path / "split" / "split_1.mcap").write_bytes(b"\x89MCA")
    with pytest.raises(BadInputError, match="no file of it holds a complete message"):
        BagReader(tmp_path / "split")


def test_a_metadata_yaml_that_does_not_parse_is_a_one_line_error(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_bag(tmp_path / "bag", scene_frames(4, 0))
    (tmp_path / "bag" / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  version: [9\n  storage: : :\n")
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "cannot read bag" in err[0] and "metadata.yaml" in err[0], err


def test_ctrl_c_while_a_frame_is_written_leaves_every_topic_that_frame(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C between two of a frame's messages left the bag with a /tracks more than /markers: the first Ctrl-C
    now lets the frame finish, and every output ends on it."""
    import os
    import signal

    from rosbags.rosbag2 import Writer

    write_bag(tmp_path / "bag", scene_frames())
    write = Writer.write
    calls = []

    def write_then_ctrl_c(self: Writer, *args: object, **kwargs: object) -> None:
        write(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 3 * 3 + 1:  # the fourth frame's first message is written, its second not yet
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Writer, "write", write_then_ctrl_c)
    out_bag = tmp_path / "results"
    args = ["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out"), *ITEMS, "--out-bag", str(out_bag)]
    assert main(args) == 130
    with AnyReader([out_bag], default_typestore=typestore()) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts == {"/tracks": 4, "/change_mask": 4, "/markers": 4}
    assert len(list((tmp_path / "out" / "change_masks").glob("*.png"))) == 4
    assert {line.split(",")[0] for line in (tmp_path / "out" / "tracks.txt").read_text().splitlines()} <= {
        "1", "2", "3", "4"}


def test_an_image_stamped_0_among_stamped_ones_is_a_bad_frame(tmp_path: Path) -> None:
    """The log time stood in for a zero stamp frame by frame: in a sim-time bag (stamps ~10 s, log times ~1.7e9 s)
    that one frame was hours ahead of the rest, and the item memory's times with it. A bag whose images are all
    stamped 0 still takes the log time (every frame: two zeros in a row decide, and the first waits); one whose
    first frame alone is stamped 0 (a simulator's first) is stamped, not all log time; a frame a day ahead is a bad
    one, but a clock stepped forward for good (NTP) is taken from the frame after the step."""
    from bag_scene import _transform, camera_info
    from rosbags.rosbag2 import Writer

    from spatial_memory_ros.io.bag_types import make

    store = typestore()
    for name, zeroed in (("one", {3}), ("all", set(range(6))), ("ahead", set()), ("first", {0}), ("step", set())):
        with Writer(tmp_path / name, version=9, storage_plugin=StoragePlugin.MCAP) as w:
            tf = w.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=store)
            info = w.add_connection("/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store)
            img = w.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
            links = [_transform("base_link", CAMERA_FRAME, T_MAP_CAM, 0.0),
                     _transform("map", "base_link", np.eye(4), 0.0)]
            w.write(tf, 1, store.serialize_cdr(make("tf2_msgs/msg/TFMessage", transforms=links),
                                               "tf2_msgs/msg/TFMessage"))
            for i, (t, image) in enumerate(scene_frames(6, 0)):
                log_ns = int(round((1.7e9 + t) * 1e9))
                w.write(info, log_ns, store.serialize_cdr(camera_info(t), "sensor_msgs/msg/CameraInfo"))
                ahead = (name == "ahead" and i == 3) or (name == "step" and i >= 3)
                stamp = 0.0 if i in zeroed else t + 86400 if ahead else t
                w.write(img, log_ns + 1_000_000, store.serialize_cdr(image_msg(image, stamp)[1],
                                                                     "sensor_msgs/msg/Image"))
        bad: list[int] = []
        stamps = [f.stamp for _, f in BagReader(tmp_path / name).frames(lambda i, e, seen=bad: seen.append(i))]
        if name in ("one", "ahead", "step"):  # one frame a day ahead: as the node drops one ahead of its clock
            assert bad == [3] and len(stamps) == 5 and (max(stamps) < 1e4) == (name != "step")
        elif name == "first":
            assert bad == [0] and len(stamps) == 5 and max(stamps) < 1e4
        else:  # the first frame waits for the second, which decides (it was dropped as "stamped 0 among stamped")
            assert bad == [] and len(stamps) == 6 and min(stamps) > 1.7e9


IMG, INFO, TFM = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo", "tf2_msgs/msg/TFMessage"


def test_in_a_bag_of_several_cameras_depth_and_camera_info_are_the_images_own() -> None:
    """A front RGB-D camera and a rear RGB one: replaying the rear camera took the front's lone depth topic (and
    would have its lone camera_info), and lifted the rear camera's detections with the front camera's depth."""
    types = {"/front/color/image_raw": IMG, "/front/color/camera_info": INFO, "/front/depth/image_raw": IMG,
             "/rear/color/image_raw": IMG, "/tf": TFM}
    rear = choose_topics(types, BagOptions(image_topic="/rear/color/image_raw"), have_camera_yaml=True)
    assert rear.depth is None
    with pytest.raises(BadInputError, match="which camera_info topic belongs to /rear/color/image_raw"):
        choose_topics(types, BagOptions(image_topic="/rear/color/image_raw"))
    front = choose_topics(types, BagOptions(image_topic="/front/color/image_raw"))
    assert (front.depth, front.camera_info) == ("/front/depth/image_raw", "/front/color/camera_info")
    # one camera whose topics sit under two names (image_proc's output beside the driver's): as before
    one = choose_topics({"/cam/image_raw/compressed": "sensor_msgs/msg/CompressedImage", "/camera/camera_info": INFO,
                         "/camera/depth/image_raw": IMG}, BagOptions())
    assert (one.camera_info, one.depth) == ("/camera/camera_info", "/camera/depth/image_raw")
    # a RealSense records depth twice: the one aligned to colour is the one whose pixels are the image's
    realsense = choose_topics({"/camera/color/image_raw": IMG, "/camera/color/camera_info": INFO,
                               "/camera/depth/image_rect_raw": IMG,
                               "/camera/aligned_depth_to_color/image_raw": IMG}, BagOptions())
    assert realsense.depth == "/camera/aligned_depth_to_color/image_raw"


def test_tf_topics_that_are_not_there_are_an_error_not_a_static_camera() -> None:
    """A namespaced robot's /robot1/tf with the default flags, or a typo in --tf-topic: every pose was the identity,
    positions in the camera's frame labelled map."""
    types = {"/camera/image_raw": IMG, "/camera/camera_info": INFO, "/robot1/tf": TFM, "/robot1/tf_static": TFM}
    with pytest.raises(BadInputError, match="has no /tf but has /robot1/tf, /robot1/tf_static: choose with"):
        choose_topics(types, BagOptions())
    ok = choose_topics(types, BagOptions(tf_topic="/robot1/tf", tf_static_topic="/robot1/tf_static"))
    assert ok.tf == ["/robot1/tf", "/robot1/tf_static"]
    with pytest.raises(BadInputError, match="no topic /robot1/tf_typo"):
        choose_topics(types, BagOptions(tf_topic="/robot1/tf_typo", tf_static_topic="/robot1/tf_static"))
    static = choose_topics({"/camera/image_raw": IMG, "/camera/camera_info": INFO}, BagOptions())
    assert static.tf == []  # no tf at all: a static camera, as before


def test_camera_info_goes_with_the_image_of_its_stamp(tmp_path: Path) -> None:
    """A zooming camera (fx changes every frame), each image logged 120 ms after its stamp: by log time it took the
    next frame's camera_info."""
    frames = scene_frames(4, 0)
    items = [("/tf_static", TFM, make_tf([_transform("map", CAMERA_FRAME, T_MAP_CAM, 0.0)]), frames[0][0] - 0.5)]
    for i, (t, image) in enumerate(frames):
        info = camera_info(t)
        info.k[0] = info.p[0] = 300.0 + 10 * i
        items.append(("/camera/camera_info", INFO, info, t + 0.001))
        msgtype, msg = image_msg(image, t)
        items.append(("/camera/image_raw", msgtype, msg, t + 0.12))
    reader = BagReader(write_messages(tmp_path / "bag", items))
    assert [f.intrinsics.fx for _, f in reader.frames()] == [300.0, 310.0, 320.0, 330.0]


def test_depth_of_another_frame_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Aligned depth carries the image's frame_id; the node ignores another's, and so does replay now."""
    frames = scene_frames(3, 0)
    items = camera_items(frames) + [("/camera/depth/image_raw", IMG, depth_msg(t, 0.8, frame_id="other_optical"),
                                     t + 0.002) for t, _ in frames]
    with caplog.at_level("WARNING"):
        got = [f for _, f in BagReader(write_messages(tmp_path / "bag", items)).frames()]
    assert len(got) == 3 and all(f.depth is None for f in got)
    assert "its frame 'other_optical' is not the image's" in caplog.text


def make_tf(links: list[object]) -> object:
    from spatial_memory_ros.io.bag_types import make

    return make(TFM, transforms=links)


def camera_items(frames: list[tuple[float, np.ndarray]], *, tf_parent: str | None = "map", zero: bool = False,
                 image_lag_s: float = 0.001) -> list[tuple[str, str, object, float]]:
    """A still camera's messages for write_messages: /tf_static tf_parent <- the camera (None: no tf), and each
    frame's camera_info at its stamp and image logged image_lag_s after it; zero: a driver that stamps them 0."""
    items: list[tuple[str, str, object, float]] = []
    if tf_parent is not None:
        items.append(("/tf_static", TFM, make_tf([_transform(tf_parent, CAMERA_FRAME, T_MAP_CAM, 0.0)]),
                      frames[0][0] - 0.5))
    for t, image in frames:
        items.append(("/camera/camera_info", INFO, camera_info(0.0 if zero else t), t))
        msgtype, msg = image_msg(image, 0.0 if zero else t)
        items.append(("/camera/image_raw", msgtype, msg, t + image_lag_s))
    return items


def test_colour_logged_late_still_finds_its_depth(tmp_path: Path) -> None:
    """Colour logged 0.4 s after its stamp (compression latency), depth at 30 Hz logged on time: the last ten depth
    messages (0.33 s) no longer held the matching one, and every frame went without depth, silently."""
    frames = scene_frames(5, 0)
    items = camera_items(frames, image_lag_s=0.4)
    depth_stamps = [frames[0][0] - 0.2 + k / 30 for k in range(int(1.2 * 30))]
    for k, t in enumerate(depth_stamps):  # each depth image says which it is by its value: 1 m + 1 cm per message
        items.append(("/camera/depth/image_raw", IMG, depth_msg(t, 1.0 + 0.01 * k), t))
    got = [f for _, f in BagReader(write_messages(tmp_path / "bag", items)).frames()]
    assert len(got) == len(frames) and all(f.depth is not None for f in got)
    for f in got:
        nearest = min(range(len(depth_stamps)), key=lambda k: abs(depth_stamps[k] - f.stamp))
        assert f.depth is not None and float(np.nanmedian(f.depth)) == pytest.approx(1.0 + 0.01 * nearest, abs=1e-3)


def test_a_bag_stamped_0_keeps_its_first_frame_and_stamps_its_outputs_with_the_log_time(tmp_path: Path) -> None:
    """A driver that leaves stamps at 0: the first frame was dropped ("stamped 0 in a bag whose images are
    stamped", untrue) and every /tracks, /change_mask and /markers header of --out-bag was stamped 0."""
    frames = scene_frames(4, 0)
    bag, out_bag = write_messages(tmp_path / "bag", camera_items(frames, zero=True)), tmp_path / "results"
    assert main(["run", str(bag), "--out", str(tmp_path / "out"), *ITEMS, "--out-bag", str(out_bag)]) == 0
    with AnyReader([out_bag], default_typestore=typestore()) as reader:
        tracks = [(t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages() if c.topic == "/tracks"]
    assert len(tracks) == len(frames)
    for log_ns, msg in tracks:
        stamp = msg.header.stamp  # type: ignore[attr-defined]
        assert stamp.sec * 1_000_000_000 + stamp.nanosec == log_ns  # the time each frame was processed at


@pytest.mark.parametrize(("tf", "flag", "frame"), [(True, "/odom", "odom"), (False, None, CAMERA_FRAME)])
def test_the_outputs_name_the_frame_they_are_in(tmp_path: Path, tf: bool, flag: str | None, frame: str) -> None:
    """items.json said frame_id "map" beside "map_frame": "odom (...)", and --out-bag labelled a static camera's
    tracks and markers "map" (they are in its optical frame); --map-frame /odom was written with its slash."""
    frames = scene_frames(4, 0)
    items = camera_items(frames, tf_parent="odom" if tf else None)
    bag, out_bag = write_messages(tmp_path / "bag", items), tmp_path / "results"
    args = ["run", str(bag), "--out", str(tmp_path / "out"), *ITEMS, "--out-bag", str(out_bag)]
    assert main(args + (["--map-frame", flag] if flag else [])) == 0
    doc = json.loads((tmp_path / "out" / "items.json").read_text())
    assert doc["frame_id"] == frame and doc["items"] and {i["frame_id"] for i in doc["items"]} == {frame}
    with AnyReader([out_bag], default_typestore=typestore()) as reader:
        got = {(c.topic, reader.deserialize(raw, c.msgtype).header.frame_id) for c, _, raw in reader.messages()
               if c.topic == "/tracks"}
        markers = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages() if c.topic == "/markers"]
    assert got == {("/tracks", frame)}
    assert {m.header.frame_id for a in markers for m in a.markers} == {frame}  # type: ignore[attr-defined]


def test_depth_topics_left_unused_are_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two depth topics, neither aligned to colour: depth was left unused without a word."""
    frames = scene_frames(2, 0)
    items = camera_items(frames) + [(topic, IMG, depth_msg(t, 0.8), t + 0.002) for t, _ in frames
                                    for topic in ("/camera/depth/image_raw", "/camera/depth/image_rect_raw")]
    with caplog.at_level("WARNING"):
        reader = BagReader(write_messages(tmp_path / "bag", items))
    assert reader.topics.depth is None
    assert "no depth used, though it has /camera/depth/image_raw, /camera/depth/image_rect_raw" in caplog.text


def test_the_first_image_of_a_bag_stamped_0_is_kept_under_a_frame_limit(tmp_path: Path) -> None:
    """--max-frames 1 on a bag whose images are all stamped 0: its one frame waited for a second image that the
    limit never read, and was refused ("no later image to tell")."""
    frames = scene_frames(5, 0)
    bad: list[int] = []
    reader = BagReader(write_messages(tmp_path / "bag", camera_items(frames, zero=True)))
    got = list(reader.frames(lambda i, e: bad.append(i), limit=1))
    assert bad == [] and [i for i, _ in got] == [0] and got[0][1].stamp == pytest.approx(frames[0][0] + 0.001)


def test_out_bag_markers_outlive_the_gap_between_frames(tmp_path: Path) -> None:
    """A 0.5 Hz input: the markers lived 1 s, so on replay they were gone half of every 2 s gap."""
    frames = [(1000.0 + 2.0 * k, image) for k, (_, image) in enumerate(scene_frames(4, 0))]
    bag, out_bag = write_messages(tmp_path / "bag", camera_items(frames)), tmp_path / "results"
    assert main(["run", str(bag), "--out", str(tmp_path / "out"), *ITEMS, "--out-bag", str(out_bag)]) == 0
    with AnyReader([out_bag], default_typestore=typestore()) as reader:
        arrays = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages() if c.topic == "/markers"]
    later = [m for a in arrays[1:] for m in a.markers if m.action == 0]  # type: ignore[attr-defined]
    assert later and all(m.lifetime.sec + m.lifetime.nanosec * 1e-9 >= 4.0 for m in later)


def test_under_a_frame_limit_a_bag_stamped_0_keeps_its_first_frames_depth(tmp_path: Path) -> None:
    """Depth stamped 0 waits for the images' decision; past --max-frames it was decided but never released, and the
    one frame went without depth."""
    frames = scene_frames(3, 0)
    items = camera_items(frames, zero=True) + [("/camera/depth/image_raw", IMG, depth_msg(0.0, 0.8), t - 0.002)
                                               for t, _ in frames]
    got = list(BagReader(write_messages(tmp_path / "bag", items)).frames(limit=1))
    assert [(i, f.depth is not None) for i, f in got] == [(0, True)]


def test_no_depth_asked_for_is_not_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frames = scene_frames(2, 0)
    items = camera_items(frames) + [(topic, IMG, depth_msg(t, 0.8), t + 0.002) for t, _ in frames
                                    for topic in ("/camera/depth/image_raw", "/camera/depth/image_rect_raw")]
    with caplog.at_level("WARNING"):
        reader = BagReader(write_messages(tmp_path / "bag", items), BagOptions(depth_topic=""))
    assert reader.topics.depth is None and "no depth used" not in caplog.text


def _mcap_chunks(data: bytes) -> list[int]:
    """Offsets of an MCAP file's chunk records (opcode 0x06): each record is opcode, u64 length, body."""
    at, chunks = 8, []
    while at + 9 <= len(data):
        if data[at] == 0x06:
            chunks.append(at)
        at += 9 + int.from_bytes(data[at + 1:at + 9], "little")
    return chunks


@pytest.mark.parametrize("moving_tf", [False, True])
def test_a_bag_damaged_inside_gives_the_frames_before_the_damage(tmp_path: Path, moving_tf: bool,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """A damaged record inside a bag whose end is whole (not a cut: nothing to recover) raised rosbags' ReaderError
    part-way through `run`: a traceback, and no items.json. Now the frames before it are given and the run is told
    once why the rest are not; tf and camera_info read before it stand."""
    write_bag(tmp_path / "bag", scene_frames(), moving_tf=moving_tf)
    whole = [(i, f.stamp) for i, f in BagReader(tmp_path / "bag").frames()]
    mcap = tmp_path / "bag" / "bag.mcap"
    data = bytearray(mcap.read_bytes())
    chunks = _mcap_chunks(bytes(data))
    assert len(chunks) >= 4
    # the length of the first record in the middle chunk (its records start 49 bytes in: opcode, length, times,
    # sizes, crc, an empty compression name, the records' length)
    at = chunks[len(chunks) // 2] + 50
    data[at:at + 4] = b"\xff\xff\xff\xff"
    mcap.write_bytes(bytes(data))
    bad: list[tuple[int, str]] = []
    with caplog.at_level("WARNING"):
        reader = BagReader(tmp_path / "bag")
        got = [(i, f.stamp) for i, f in reader.frames(lambda i, e: bad.append((i, str(e))))]
    assert 0 < len(got) < len(whole) and got == whole[:len(got)]
    assert len(bad) == 1 and "is damaged after" in bad[0][1] and "the rest of it is not read" in bad[0][1]
    assert "(tf and camera_info)" in caplog.text  # camera_info (and a moving /tf) run through the damaged chunk
    with pytest.raises(BadInputError, match="is damaged after"):
        list(BagReader(tmp_path / "bag").frames())
    assert main(["run", str(tmp_path / "bag"), "--out", str(tmp_path / "out"), *ITEMS]) == 0
    assert (tmp_path / "out" / "items.json").is_file()
    assert len(list((tmp_path / "out" / "change_masks").iterdir())) == len(got)


def test_an_image_without_a_frame_id_gives_every_out_bag_topic_one_frame(tmp_path: Path) -> None:
    """--out-bag named the camera "camera" in /tracks, /markers and items.json, but left /change_mask's frame_id
    empty for images that had none, which RViz cannot place."""
    from spatial_memory_ros.core.types import FrameResult
    from spatial_memory_ros.io.bag import FrameHeader
    from spatial_memory_ros.io.bag_writer import BagResultWriter

    writer = BagResultWriter(tmp_path / "res", map_frame=None)
    result = FrameResult(stamp=1.0, tracks=[], change_mask=np.zeros((4, 6), np.uint8), tags=[], observations=[],
                         camera_moved=False)
    writer.write(1.0, result, [], FrameHeader("", 1_000_000_000, 1_000_000_000))
    writer.close()
    with AnyReader([tmp_path / "res"], default_typestore=typestore()) as reader:
        frames = {c.topic: reader.deserialize(raw, c.msgtype).header.frame_id  # type: ignore[attr-defined]
                  for c, _, raw in reader.messages() if c.topic in ("/tracks", "/change_mask")}
    assert frames == {"/tracks": "camera", "/change_mask": "camera"}


def test_out_bag_track_times_are_the_images_exact_stamps(tmp_path: Path) -> None:
    """The node gives a track's first_seen / last_seen back as the image's exact stamp (encode.remember_stamp); the
    bag writer converted the core's float seconds, tens of ns off a real-epoch stamp, so they matched no header."""
    from spatial_memory_ros.core.types import FrameResult, PositionSource, TrackInfo, TrackState
    from spatial_memory_ros.io.bag import FrameHeader
    from spatial_memory_ros.io.bag_writer import BagResultWriter

    sec, first_ns, last_ns = 1_717_171_717, 123_456_789, 223_456_789
    first, last = sec + first_ns * 1e-9, sec + last_ns * 1e-9  # the float seconds bag_stamps gives the core
    writer = BagResultWriter(tmp_path / "res", map_frame="map")
    for t, ns in ((first, first_ns), (last, last_ns)):
        track = TrackInfo(1, "item", "mug", TrackState.CONFIRMED, False, 0.9, np.array([0.0, 0.0, 10.0, 10.0]),
                          np.array([1.0, 2.0, 0.0]), np.zeros(3), first, t, PositionSource.TAG)
        result = FrameResult(stamp=t, tracks=[track], change_mask=np.zeros((4, 4), np.uint8), tags=[],
                             observations=[], camera_moved=False)
        writer.write(t, result, [], FrameHeader("cam", sec * 10**9 + ns, sec * 10**9 + ns))
    writer.close()
    with AnyReader([tmp_path / "res"], default_typestore=typestore()) as reader:
        arrays = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages() if c.topic == "/tracks"]
    assert len(arrays) == 2
    for array in arrays:
        header = (array.header.stamp.sec, array.header.stamp.nanosec)
        seen = array.tracks[0]
        assert (seen.last_seen.sec, seen.last_seen.nanosec) == header
        assert (seen.first_seen.sec, seen.first_seen.nanosec) == (sec, first_ns)
