"""Message conversions on hand-built messages (the cv_bridge replacement and our own messages)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from spatial_memory_ros.core.errors import BadInputError  # noqa: E402
from spatial_memory_ros.core.types import (  # noqa: E402
    ItemAnswer,
    ItemLocation,
    PositionSource,
    TrackInfo,
    TrackState,
)
from spatial_memory_ros.ros import conversions as conv  # noqa: E402


def _msg(encoding: str, arr: np.ndarray, pad: int = 0, bigendian: bool = False) -> Image:
    h, w = arr.shape[:2]
    rows = arr.astype(arr.dtype.newbyteorder(">") if bigendian else arr.dtype).reshape(h, -1).view(np.uint8)
    rows = np.hstack([rows, np.zeros((h, pad), np.uint8)])
    return Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=rows.shape[1],
                 data=rows.tobytes())


@pytest.mark.parametrize("pad", [0, 7])
def test_colour_encodings_round_trip(pad: int) -> None:
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(conv.image_to_bgr(_msg("bgr8", bgr, pad)), bgr)
    assert np.array_equal(conv.image_to_bgr(_msg("rgb8", bgr[:, :, ::-1].copy(), pad)), bgr)
    grey = bgr[:, :, 0].copy()
    assert np.array_equal(conv.image_to_bgr(_msg("mono8", grey, pad)), np.dstack([grey] * 3))
    back = conv.image_to_bgr(conv.bgr_to_image(bgr, conv.header("cam", conv.sec_to_stamp(1.5))))
    assert np.array_equal(back, bgr)


def _blocks() -> np.ndarray:
    """(8, 12, 3) BGR: three 4 px wide colour blocks over two rows, each distinct in every channel."""
    colours = [(20, 90, 200), (200, 40, 60), (70, 220, 130), (240, 240, 10), (5, 5, 5), (128, 60, 250)]
    img = np.zeros((8, 12, 3), np.uint8)
    for k, c in enumerate(colours):
        img[(k // 3) * 4:(k // 3) * 4 + 4, (k % 3) * 4:(k % 3) * 4 + 4] = c
    return img


def test_the_other_colour_encodings_cv_bridge_knows() -> None:
    """rgba8 / bgra8 (simulators), 8UC3 / 8UC1, 16-bit (top byte kept, either byte order), Bayer mosaics in
    all four patterns (ROS names the top-left 2x2 block, OpenCV a shifted one) and yuv422 (UYVY) /
    yuv422_yuy2 (YUYV) from USB cameras all come out as the BGR they encode."""
    bgr = _blocks()
    alpha = np.full(bgr.shape[:2] + (1,), 77, np.uint8)
    assert np.array_equal(conv.image_to_bgr(_msg("bgra8", np.dstack([bgr, alpha]), 5)), bgr)
    assert np.array_equal(conv.image_to_bgr(_msg("rgba8", np.dstack([bgr[:, :, ::-1], alpha]))), bgr)
    assert np.array_equal(conv.image_to_bgr(_msg("8UC3", bgr)), bgr)
    grey = bgr[:, :, 1].copy()
    assert np.array_equal(conv.image_to_bgr(_msg("8UC1", grey)), np.dstack([grey] * 3))
    for bigendian in (False, True):
        wide = bgr.astype(np.uint16) * 256 + 255  # the low byte is dropped
        assert np.array_equal(conv.image_to_bgr(_msg("bgr16", wide, bigendian=bigendian)), bgr)
        assert np.array_equal(conv.image_to_bgr(_msg("rgb16", wide[:, :, ::-1], 3, bigendian=bigendian)), bgr)
        assert np.array_equal(conv.image_to_bgr(_msg("mono16", wide[:, :, 1], bigendian=bigendian)),
                              np.dstack([grey] * 3))
    channel = {"r": 2, "g": 1, "b": 0}
    for pattern in ("rggb", "bggr", "gbrg", "grbg"):
        mosaic = np.zeros(bgr.shape[:2], np.uint8)
        for k, name in enumerate(pattern):  # the 2x2 block, row-major, repeated
            mosaic[k // 2::2, k % 2::2] = bgr[k // 2::2, k % 2::2, channel[name]]
        out = conv.image_to_bgr(_msg(f"bayer_{pattern}8", mosaic))
        # inside each block, away from its edges, demosaicing gives the block's colour back
        for y, x in ((1, 1), (1, 5), (1, 9), (5, 1), (5, 5), (5, 9)):
            assert np.abs(out[y:y + 2, x:x + 2].astype(int) - bgr[y:y + 2, x:x + 2]).max() <= 2, (pattern, y, x)
    for encoding, code in (("yuv422", cv2.COLOR_BGR2YUV_UYVY), ("yuv422_yuy2", cv2.COLOR_BGR2YUV_YUY2)):
        packed = cv2.cvtColor(bgr, code)  # (H, W, 2)
        out = conv.image_to_bgr(_msg(encoding, packed, 4))
        assert np.abs(out.astype(int) - bgr).max() <= 3, encoding  # YUV rounding


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (Image(height=2, width=2, encoding="32FC1", step=8, data=bytes(16)), "unsupported encoding"),
        (Image(height=2, width=3, encoding="yuv422", step=6, data=bytes(12)), "needs an even width"),
        (Image(height=0, width=0, encoding="bgr8", step=0, data=b""), "empty image"),
        (Image(height=2, width=4, encoding="bgr8", step=8, data=bytes(16)), "step 8 < "),
        (Image(height=4, width=4, encoding="bgr8", step=12, data=bytes(20)), "data has 20 bytes"),
    ],
)
def test_bad_images_raise_clear_errors(msg: Image, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        conv.image_to_bgr(msg)


@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_16uc1_mm_and_32fc1_m(bigendian: bool) -> None:
    mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    d = conv.depth_to_metres(_msg("16UC1", mm, bigendian=bigendian))
    assert np.isnan(d[0, 0]) and d[0, 1] == pytest.approx(1.0) and d[1, 0] == pytest.approx(2.5)
    assert np.isnan(d[1, 1])  # 65535, a time-of-flight sensor's saturation: was a position 65.5 m away
    m = np.array([[np.nan, 1.25], [-1.0, np.inf]], np.float32)
    d = conv.depth_to_metres(_msg("32FC1", m, bigendian=bigendian))
    assert d[0, 1] == pytest.approx(1.25) and np.isnan(d[0, 0]) and np.isnan(d[1, 0]) and np.isnan(d[1, 1])
    with pytest.raises(BadInputError, match="depth encoding"):
        conv.depth_to_metres(_msg("bgr8", np.zeros((2, 2, 3), np.uint8)))


def test_camera_info() -> None:
    info = CameraInfo(width=640, height=480, k=[500.0, 0, 320, 0, 510.0, 240, 0, 0, 1], d=[0.1, 0, 0, 0, 0])
    intr = conv.camera_info_to_intrinsics(info)
    assert (intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height) == (500, 510, 320, 240, 640, 480)
    assert intr.distortion[0] == pytest.approx(0.1)
    with pytest.raises(BadInputError, match="no calibration"):
        conv.camera_info_to_intrinsics(CameraInfo(width=640, height=480))
    fisheye = CameraInfo(width=640, height=480, k=[500.0, 0, 320, 0, 510.0, 240, 0, 0, 1],
                         distortion_model="equidistant", d=[0.1, -0.02, 0.003, 0.0])
    with pytest.raises(BadInputError, match="'equidistant' is not supported.*image_rect"):
        conv.camera_info_to_intrinsics(fisheye)  # its 4 values would have been read as k1 k2 p1 p2
    fisheye.d = [0.0] * 4  # rectified: no distortion, whatever the model
    assert conv.camera_info_to_intrinsics(fisheye).distortion == (0.0,) * 4
    odd_zeros = CameraInfo(width=640, height=480, k=[500.0, 0, 320, 0, 510.0, 240, 0, 0, 1], d=[0.0] * 3)
    assert conv.camera_info_to_intrinsics(odd_zeros).distortion == ()  # OpenCV takes no 3 coefficients
    for d in ([0.1, 0.0, 0.0], [float("nan"), 0, 0, 0, 0]):
        with pytest.raises(BadInputError, match="distortion must be"):
            conv.camera_info_to_intrinsics(CameraInfo(width=640, height=480, distortion_model="plumb_bob", d=d,
                                                      k=[500.0, 0, 320, 0, 510.0, 240, 0, 0, 1]))
    for bad in (float("nan"), float("inf")):
        with pytest.raises(BadInputError, match="all finite"):
            conv.camera_info_to_intrinsics(CameraInfo(width=640, height=480, k=[500.0, 0, bad, 0, 510.0, 240, 0, 0, 1]))


def test_camera_info_of_a_binned_or_cropped_image() -> None:
    """K and width / height are the sensor's; the image is binned (binning_x/y) or cropped (roi): its pixel u is
    the sensor's u * binning + offset (REP 104). Read as it was, every frame was dropped for its size."""
    k = [500.0, 0, 320, 0, 510.0, 240, 0, 0, 1]
    binned = conv.camera_info_to_intrinsics(CameraInfo(width=640, height=480, k=k, binning_x=2, binning_y=2))
    assert (binned.fx, binned.fy, binned.cx, binned.cy, binned.width, binned.height) == (250, 255, 160, 120, 320, 240)
    info = CameraInfo(width=640, height=480, k=k, d=[0.1, 0, 0, 0, 0])
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 100, 50, 320, 240
    cropped = conv.camera_info_to_intrinsics(info)
    assert (cropped.fx, cropped.cx, cropped.cy, cropped.width, cropped.height) == (500, 220, 190, 320, 240)
    assert cropped.distortion[0] == pytest.approx(0.1)  # D works on normalised coordinates: unchanged
    info.binning_x = info.binning_y = 4  # both: crop first, then bin
    both = conv.camera_info_to_intrinsics(info)
    assert (both.fx, both.cx, both.cy, both.width, both.height) == (125, 55, 47.5, 80, 60)


def test_camera_info_of_a_rectified_image_uses_p_and_no_distortion() -> None:
    """image_proc publishes image_rect beside the raw camera_info: its pixels follow P. Read through K and D, a
    rectified pixel's ray was off by degrees, and a fisheye's image_rect (the advice the refusal gave) was refused
    for good."""
    k = [600.0, 0, 320, 0, 600.0, 240, 0, 0, 1]
    p = [534.1, 0, 330.5, 0, 0, 534.1, 236.2, 0, 0, 0, 1, 0]
    raw = CameraInfo(width=640, height=480, k=k, p=p, d=[-0.35, 0.12, 0, 0, 0], distortion_model="plumb_bob")
    rect = conv.camera_info_to_intrinsics(raw, rectified=True)
    assert (rect.fx, rect.fy, rect.cx, rect.cy, rect.width, rect.height) == (534.1, 534.1, 330.5, 236.2, 640, 480)
    assert rect.distortion == ()
    assert conv.camera_info_to_intrinsics(raw).fx == 600.0  # the raw image keeps K and D
    fisheye = CameraInfo(width=640, height=480, k=k, p=p, distortion_model="equidistant", d=[0.1, -0.02, 0.003, 0.0])
    with pytest.raises(BadInputError, match="image_rectified: true"):
        conv.camera_info_to_intrinsics(fisheye)
    assert conv.camera_info_to_intrinsics(fisheye, rectified=True).distortion == ()
    with pytest.raises(BadInputError, match="no projection for the rectified image"):
        conv.camera_info_to_intrinsics(CameraInfo(width=640, height=480, k=k), rectified=True)  # P all zero
    raw.binning_x = raw.binning_y = 2  # binning and roi apply to P as to K (image_geometry)
    assert conv.camera_info_to_intrinsics(raw, rectified=True).cx == pytest.approx(165.25)


def test_camera_info_with_an_roi_outside_the_sensor_is_refused() -> None:
    """Accepted before: the image centre came out negative (cx -280) and every position shifted, without a word."""
    info = CameraInfo(width=640, height=480, k=[500.0, 0, 320, 0, 510.0, 240, 0, 0, 1])
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 600, 400, 640, 480
    with pytest.raises(BadInputError, match="roi .* lies outside the sensor's 640x480"):
        conv.camera_info_to_intrinsics(info)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 0, 0, 4000, 3000
    with pytest.raises(BadInputError, match="outside"):
        conv.camera_info_to_intrinsics(info)


@pytest.mark.parametrize("t", [0.0, 1.5, 1_700_000_000.123456789, 12.999999999])
def test_stamps_round_trip(t: float) -> None:
    stamp = conv.sec_to_stamp(t)
    assert 0 <= stamp.nanosec < 1_000_000_000
    assert conv.stamp_to_sec(stamp) == pytest.approx(t, abs=2e-6)


def _location(x: float) -> ItemLocation:
    return ItemLocation(position=np.array([x, 2.0, 0.0]), orientation=np.array([0, 0, 0, 1.0]), confidence=0.7,
                        last_seen=10.5, observations=4, dwell_s=30.0)


def test_track_and_answer_messages() -> None:
    track = TrackInfo(track_id=7, label="item", item="mug", state=TrackState.CONFIRMED, is_dynamic=False,
                      confidence=0.9, box=np.array([10.0, 20.0, 50.0, 80.0]), position=np.array([1.0, 2.0, 0.5]),
                      velocity=np.array([0.1, 0.0, 0.0]), first_seen=1.0, last_seen=2.5,
                      position_source=PositionSource.TAG)
    msg = conv.track_to_msg(track)
    assert (msg.id, msg.item, msg.state, msg.position_source) == (7, "mug", msg.STATE_CONFIRMED, msg.POSITION_TAG)
    assert (msg.x_min, msg.y_min, msg.width, msg.height) == (10, 20, 40, 60)
    assert (msg.position.x, msg.velocity.x, msg.last_seen.sec, msg.last_seen.nanosec) == (1.0, 0.1, 2, 500_000_000)
    unknown = conv.track_to_msg(TrackInfo(**{**track.__dict__, "position": None}))
    assert unknown.position_source == unknown.POSITION_NONE and unknown.position.x == 0.0

    answer = ItemAnswer(item="mug", usual=_location(1.0), current=_location(3.0), displaced=True, distance_m=2.0,
                        alternatives=[_location(5.0)])
    status = conv.answer_to_status(answer, "map")
    assert status.usual.pose.header.frame_id == "map" and status.current.pose.pose.position.x == 3.0
    assert status.displaced and status.usual.observations == 4 and status.usual.dwell_s == 30.0
    from spatial_memory.srv import LocateItem

    response = LocateItem.Response()
    conv.fill_locate_response(response, answer, "map")
    assert response.success and "displaced by 2.00 m" in response.message
    assert [a.pose.pose.position.x for a in response.alternatives] == [5.0]
    assert not (response.missing or response.current_inferred or status.missing or status.current_inferred)

    from dataclasses import replace

    gone = replace(answer, missing=True, current_inferred=True)
    assert conv.answer_to_status(gone, "map").missing and conv.answer_to_status(gone, "map").current_inferred
    conv.fill_locate_response(response, gone, "map")
    assert response.missing and response.current_inferred and "not where last seen" in response.message
    conv.fill_locate_response(response, replace(gone, current_inferred=False), "map")
    assert not response.current_inferred and "whereabouts unknown" in response.message
    gone_home = replace(answer, missing=True, displaced=False, distance_m=0.0)  # its usual place seen empty
    conv.fill_locate_response(response, gone_home, "map")
    assert "whereabouts unknown" in response.message and "in its usual place" not in response.message
    back = replace(answer, current=_location(1.0), displaced=False, distance_m=0.0, current_inferred=True)
    conv.fill_locate_response(response, back, "map")  # the return prior's prediction: not missing
    assert response.current_inferred and not response.missing and "probably back at (1.00" in response.message


def test_times_past_int32_seconds_are_clamped_not_wrapped() -> None:
    """builtin_interfaces' sec is int32 and rclpy does not check it: 2**31 s went out as -2**31 (1901)."""
    assert (conv.sec_to_stamp(2.0**31 + 5).sec, conv.sec_to_stamp(2.0**31 - 1e-7).sec) == (2**31 - 1, 2**31 - 1)
    from spatial_memory_ros.ros import encode

    types = encode.rclpy_types()
    assert encode.duration(3e9, types).sec == 2**31 - 1 and encode.duration(-1.0, types).sec == 0


@pytest.mark.parametrize("bad", ["translation", "rotation"])
def test_a_transform_that_is_not_finite_is_refused(bad: str) -> None:
    """tf2 refuses NaN too; kept, it made every pose through that link NaN until it was sent again."""
    msg = conv.transform_to_msg("map", "cam", np.eye(4), conv.sec_to_stamp(1.0))
    if bad == "translation":
        msg.transform.translation.x = float("nan")
    else:
        msg.transform.rotation.w = float("inf")
    with pytest.raises(ValueError, match="not finite"):
        conv.transform_to_matrix(msg)


def test_transform_round_trip() -> None:
    """transform_to_msg (bench-node's /tf) and transform_to_matrix (the node's /tf listener) are inverses."""
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", [10.0, -35.0, 120.0], degrees=True).as_matrix()
    T[:3, 3] = [1.5, -2.0, 0.75]
    msg = conv.transform_to_msg("map", "cam0_optical", T, conv.sec_to_stamp(12.5))
    assert (msg.header.frame_id, msg.child_frame_id, msg.header.stamp.sec) == ("map", "cam0_optical", 12)
    np.testing.assert_allclose(conv.transform_to_matrix(msg), T, atol=1e-12)


def test_an_images_stamp_comes_back_exact_in_what_the_node_publishes() -> None:
    """A float64 near 1.8e9 s keeps ~240 ns: a track's last_seen was 1796444322.363262177 for an image stamped
    .363262123, no image's stamp (a consumer matching tracks to images by stamp found none)."""
    from spatial_memory_ros.ros import encode

    t = encode.remember_stamp(1796444322, 363262123)
    back = conv.sec_to_stamp(t)
    assert (back.sec, back.nanosec) == (1796444322, 363262123)
    never_seen = conv.sec_to_stamp(t + 0.5)  # not an image's: converted from the float, as before
    assert never_seen.sec == 1796444322 and abs(never_seen.nanosec - 863262123) < 1000
    # two synced cameras' stamps 20 ns apart are one float: neither is given back for the other
    a = encode.remember_stamp(1800000000, 100000000)
    b = encode.remember_stamp(1800000000, 100000020)
    back = conv.sec_to_stamp(a)
    assert a == b and back.sec == 1800000000 and abs(back.nanosec - 100000000) < 1000
    assert back.nanosec != 100000020  # camera B's stamp came back for camera A's tracks


def test_tagged_items_count_as_expected_only_where_tags_are_looked_for() -> None:
    """With a class detector and apriltag_items off no tag is found: locate_item said "not seen yet" (worth
    looking for) about a tagged item the node could never see; it is unknown now, and the node warns at start."""
    from spatial_memory_ros.core.config import DetectorConfig, PipelineConfig, TagConfig

    tags = TagConfig(items={"mug": 3})
    for backend, apriltag_items, expected in [("apriltag", False, {"mug"}), ("coco", True, {"mug", "cup"}),
                                              ("coco", False, {"cup"})]:
        config = PipelineConfig(detector=DetectorConfig(backend=backend, apriltag_items=apriltag_items,
                                                        item_classes=("cup",)), tags=tags).validate()
        assert conv.configured_items(config) == expected
        assert conv.unsearched_tag_items(config) == ([] if "mug" in expected else ["mug"])


def test_depth_of_the_image_frame_with_a_leading_slash_is_that_frame() -> None:
    """A bridged ROS 1 driver writes "/camera"; the pose lookup strips the slash, and the depth check refused it."""
    from spatial_memory_ros.ros.image_checks import matching_depth

    depth = Image(height=2, width=3, encoding="32FC1", step=12, data=np.ones((2, 3), np.float32).tobytes())
    for depth_frame, image_frame, fault in [("/camera", "camera", None), ("camera", "/camera", None),
                                            ("/other", "camera", "depth_frame")]:
        depth.header.frame_id = depth_frame
        out, why = matching_depth(1.0, image_frame, [(1.0, depth)], (2, 3), 0.05, check_frame=True)
        assert (why[0] if why else None) == fault
        assert (out is None) == (fault is not None)
