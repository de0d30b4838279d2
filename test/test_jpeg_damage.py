"""A damaged JPEG is refused with libjpeg's reason; a whole one, and a webcam's padded one, decode as before."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from bag_scene import render

import spatial_memory_ros.ros.jpeg_damage as jd
from spatial_memory_ros.core.errors import BadInputError
from spatial_memory_ros.ros.decode import compressed_to_bgr


class Msg:
    def __init__(self, fmt: str, data: bytes) -> None:
        self.format, self.data = fmt, data


def _scene() -> tuple[np.ndarray, bytes]:
    """A frame with a camera's noise: 44 kB of JPEG, where a damaged scan desynchronises the decoder for good
    (a flat synthetic frame of 4 kB resynchronises within a few blocks and ends with one byte left over, which
    passes for padding)."""
    flat = render(np.array([0.1, -0.05, 0.0]), 0.1)
    noise = np.random.default_rng(7).normal(0.0, 12.0, flat.shape)
    image = np.clip(flat + noise, 0, 255).astype(np.uint8)
    return image, cv2.imencode(".jpg", image)[1].tobytes()


def _end_marker(data: bytes) -> int:
    end = data.rfind(b"\xff\xd9")
    assert end == len(data) - 2
    return end


def test_simplejpeg_is_installed() -> None:
    """requirements.txt pins it; without it nothing below is checked and the node decodes damage unnoticed."""
    assert jd.CHECKS_JPEG


def test_a_frame_cut_short_is_refused_where_opencv_fills_it_with_grey() -> None:
    image, jpeg = _scene()
    cut = jpeg[: len(jpeg) // 2] + b"\xff\xd9"  # a USB camera's frame whose second half was lost, its end kept
    grey = cv2.imdecode(np.frombuffer(cut, np.uint8), cv2.IMREAD_COLOR)
    assert grey is not None and grey.shape == image.shape  # OpenCV returns it, the lost part made up
    assert np.abs(grey[-40:].astype(int) - image[-40:]).mean() > 10
    with pytest.raises(BadInputError, match="damaged JPEG .*premature end of data segment"):
        compressed_to_bgr(Msg("jpeg", cut))


def test_damaged_bytes_in_the_scan_are_refused() -> None:
    image, jpeg = _scene()
    end = _end_marker(jpeg)
    refused = 0
    for at in np.linspace(len(jpeg) // 3, end - 64, 12).astype(int):
        bad = bytearray(jpeg)
        bad[at : at + 8] = bytes(range(17, 25))  # eight bytes overwritten in transit
        decoded = cv2.imdecode(np.frombuffer(bytes(bad), np.uint8), cv2.IMREAD_COLOR)
        if decoded is None or np.abs(decoded.astype(int) - cv2.imdecode(
                np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)).max() == 0:
            continue  # OpenCV refused it too, or the bytes changed nothing
        with pytest.raises(BadInputError, match="damaged JPEG .*Corrupt JPEG data"):
            compressed_to_bgr(Msg("jpeg", bytes(bad)))
        refused += 1
    assert refused >= 10  # OpenCV decoded the damage at (nearly) every place tried, and each was refused


def test_a_webcam_padding_its_frames_is_not_damage() -> None:
    """Some webcams pad each MJPEG frame before its end marker: libjpeg warns of extraneous bytes, the pixels
    are whole. A repeated byte is padding; other bytes there are what a damaged scan left over."""
    image, jpeg = _scene()
    end = _end_marker(jpeg)
    whole = compressed_to_bgr(Msg("jpeg", jpeg))
    for pad in (bytes(64), b"\x55" * 40):
        padded = jpeg[:end] + pad + jpeg[end:]
        assert jd.simplejpeg is not None
        with pytest.raises(ValueError, match="extraneous bytes before marker 0xd9"):  # the warning is there
            jd.simplejpeg.decode_jpeg(padded, colorspace="GRAY", strict=True)
        assert np.array_equal(compressed_to_bgr(Msg("jpeg", padded)), whole)
    leftover = jpeg[:end] + bytes(range(1, 65)) + jpeg[end:]
    with pytest.raises(BadInputError, match=r"\d+ extraneous bytes before marker 0xd9"):
        compressed_to_bgr(Msg("jpeg", leftover))


def test_whole_jpegs_of_every_kind_decode_as_opencv_decodes_them() -> None:
    image, _ = _scene()
    for flags in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_OPTIMIZE, 1],
                  [cv2.IMWRITE_JPEG_RST_INTERVAL, 4]):
        jpeg = cv2.imencode(".jpg", image, flags)[1].tobytes()
        assert np.array_equal(compressed_to_bgr(Msg("jpeg", jpeg)),
                              cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
    mono = cv2.imencode(".jpg", image[:, :, 1])[1].tobytes()
    assert compressed_to_bgr(Msg("mono8; jpeg compressed mono8", mono)).shape == image.shape


def test_without_simplejpeg_a_jpeg_is_decoded_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An optional dependency: a ROS install without it keeps OpenCV's behaviour (what README says)."""
    _, jpeg = _scene()
    cut = jpeg[: len(jpeg) // 2] + b"\xff\xd9"
    monkeypatch.setattr(jd, "simplejpeg", None)
    assert jd.jpeg_damage(cut) is None
    assert compressed_to_bgr(Msg("jpeg", cut)).shape[:2] == (240, 320)
