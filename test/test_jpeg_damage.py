"""A damaged JPEG is refused with libjpeg's reason; a whole one, and a webcam's padded one, decode as before."""

from __future__ import annotations

import io
import struct

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


CHECKED = pytest.mark.skipif(not jd.CHECKS_JPEG, reason="simplejpeg is not installed (optional; requirements.txt "
                             "pins it): JPEGs are decoded unchecked")


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _after_soi(jpeg: bytes, segment: bytes) -> bytes:
    return jpeg[:2] + segment + jpeg[2:]


def _without_huffman_tables(jpeg: bytes) -> bytes:
    """The JPEG with its DHT segments removed, as UVC cameras send MJPEG (the decoder uses the standard tables,
    which OpenCV's encoder writes)."""
    out, i = bytearray(jpeg[:2]), 2
    while jpeg[i + 1] != 0xDA:
        length = struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        if jpeg[i + 1] != 0xC4:
            out += jpeg[i:i + 2 + length]
        i += 2 + length
    return bytes(out + jpeg[i:])


def _stray_before_restarts(jpeg: bytes, stray: bytes) -> bytes:
    """stray inserted before every restart marker of the scan."""
    sos = jpeg.index(b"\xff\xda")
    out, i = bytearray(jpeg[:sos]), sos
    while i < len(jpeg):
        if jpeg[i] == 0xFF and i + 1 < len(jpeg) and 0xD0 <= jpeg[i + 1] <= 0xD7:
            out += stray
        out.append(jpeg[i])
        i += 1
    return bytes(out)


def _opencv(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@CHECKED
def test_a_frame_cut_short_is_refused_where_opencv_fills_it_with_grey() -> None:
    image, jpeg = _scene()
    cut = jpeg[: len(jpeg) // 2] + b"\xff\xd9"  # a USB camera's frame whose second half was lost, its end kept
    grey = cv2.imdecode(np.frombuffer(cut, np.uint8), cv2.IMREAD_COLOR)
    assert grey is not None and grey.shape == image.shape  # OpenCV returns it, the lost part made up
    assert np.abs(grey[-40:].astype(int) - image[-40:]).mean() > 10
    with pytest.raises(BadInputError, match="damaged JPEG .*premature end of data segment"):
        compressed_to_bgr(Msg("jpeg", cut))


@CHECKED
def test_a_frame_cut_short_is_refused_however_its_end_is_filled() -> None:
    """Lost packets filled with zeros up to the end marker decode as blocks, then as thousands of "extraneous
    bytes": not padding, whose run is about libjpeg's count. A camera's stray bytes before its restart markers
    stop strict decoding at the first one; its cut frame still lacks restart markers."""
    image, jpeg = _scene()
    for keep in (0.5, 0.8, 0.95):
        at = int(len(jpeg) * keep)
        filled = jpeg[:at] + bytes(len(jpeg) - at) + b"\xff\xd9"  # zero-filled as long as the lost part
        assert (np.abs(_opencv(filled).astype(int) - image).max(axis=2) > 40).mean() > 0.001
        assert jd.jpeg_damage(filled) is not None, keep
    restarts = _stray_before_restarts(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_RST_INTERVAL, 10])[1].tobytes(),
                                      bytes(4))
    assert jd.jpeg_damage(restarts) is None  # whole, with a webcam's stray bytes
    cut = restarts[: len(restarts) // 2] + b"\xff\xd9"
    assert (np.abs(_opencv(cut).astype(int) - image).max(axis=2) > 40).mean() > 0.05
    assert "restart markers: a frame cut short" in (jd.jpeg_damage(cut) or "")
    header_stray = jpeg[:20] + b"\x00" + jpeg[20:]  # a stray byte after APP0: the scan is still checked
    assert jd.jpeg_damage(header_stray) is None
    assert "premature end of data segment" in (jd.jpeg_damage(header_stray[: len(header_stray) // 2] + b"\xff\xd9")
                                               or "")


@CHECKED
def test_any_error_in_the_scan_after_a_clean_header_is_damage() -> None:
    """A damaged scan can hold a byte pair that reads as a marker; libjpeg then stops on it with an error about
    the file's structure, which after a header that parsed cleanly can only be damage."""
    image, jpeg = _scene()
    mid = len(jpeg) // 2
    for inserted, expected in ((b"\xff\xc8\x00\x04\x00\x00", "SOF type 0xc8"), (b"\xff\xd8", "two SOI markers"),
                               (b"\xff\xc0\x00\x11" + bytes(15), "two SOF markers")):
        damaged = jpeg[:mid] + inserted + jpeg[mid:]
        _opencv(damaged)  # OpenCV decodes it
        with pytest.raises(BadInputError, match=expected):
            compressed_to_bgr(Msg("jpeg", damaged))


@CHECKED
def test_stray_bytes_are_tolerated_only_before_restart_and_end_markers() -> None:
    data = b"\xff\xd8" + bytes(40) + b"\xff\xd9"
    assert jd._tolerated(data, jd.STRAY_BYTES, 0xD3) and not jd._tolerated(data, jd.STRAY_BYTES + 1, 0xD3)
    assert jd._tolerated(data, jd.STRAY_BYTES, 0xD9)
    assert not jd._tolerated(data, 1, 0xC4)  # before a table of a progressive frame's next scan
    assert not jd._tolerated(data, 1, 0xDA)  # before its next scan
    assert jd._tolerated(data, 34, 0xD9)  # 40 zeros, libjpeg counting 6 fewer: padding
    assert not jd._tolerated(data, 20, 0xD9)  # 40 zeros where libjpeg saw 20: 20 of them decoded as blocks


@CHECKED
def test_damaged_bytes_in_the_scan_are_refused() -> None:
    image, jpeg = _scene()
    end = _end_marker(jpeg)
    refused = 0
    for at in np.linspace(len(jpeg) // 3, end - 64, 12).astype(int):
        bad = bytearray(jpeg)
        bad[at : at + 8] = bytes(range(17, 25))  # eight bytes overwritten in transit
        decoded = cv2.imdecode(np.frombuffer(bytes(bad), np.uint8), cv2.IMREAD_COLOR)
        if decoded is None or (np.abs(decoded.astype(int) - _opencv(jpeg)).max(axis=2) > 40).mean() < 0.001:
            continue  # OpenCV refused it too, or the damage stayed within a few blocks (near the end: 10 bytes left)
        with pytest.raises(BadInputError, match="damaged JPEG .*Corrupt JPEG data"):
            compressed_to_bgr(Msg("jpeg", bytes(bad)))
        refused += 1
    assert refused >= 10  # OpenCV decoded visible damage at (nearly) every place tried, and each was refused


@CHECKED
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
    two_values = jpeg[:end] + b"\x01\x02" * 32 + jpeg[end:]  # padding is one value repeated
    with pytest.raises(BadInputError, match=r"\d+ extraneous bytes before marker 0xd9"):
        compressed_to_bgr(Msg("jpeg", two_values))
    stray = jpeg[:end] + bytes(range(1, 1 + jd.STRAY_BYTES)) + jpeg[end:]  # a few stray bytes: a camera's habit
    assert np.array_equal(compressed_to_bgr(Msg("jpeg", stray)), whole)


@CHECKED
def test_webcam_quirks_and_metadata_warnings_are_not_damage() -> None:
    """Frames whose pixels are whole though libjpeg warns, each as cameras and tools send them: the frame is
    decoded as OpenCV decodes it. A refused whole frame would make such a camera useless."""
    image, _ = _scene()
    base = cv2.imencode(".jpg", image)[1].tobytes()
    end = _end_marker(base)
    # a Logitech-like MJPEG frame: an AVI1 APP0, no Huffman tables, a restart marker every 10 blocks
    mjpeg = _without_huffman_tables(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_RST_INTERVAL, 10])[1].tobytes())
    app0_end = 4 + struct.unpack(">H", mjpeg[4:6])[0]
    mjpeg = mjpeg[:2] + _segment(0xE0, b"AVI1\x00" + bytes(26)) + mjpeg[app0_end:]
    thumbnail = cv2.imencode(".jpg", image[::8, ::8])[1].tobytes()  # its own end marker comes first
    frames = {
        "no Huffman tables": _without_huffman_tables(base),
        "zeros before each restart marker": _stray_before_restarts(mjpeg, bytes(4)),
        "a varying stray byte before each restart marker": _stray_before_restarts(mjpeg, b"\x17"),
        "a stray byte after APP0": mjpeg[:2] + mjpeg[2:24] + b"\x00" + mjpeg[24:],
        "40 stray bytes after APP0 (a header warning: never the pixels)": mjpeg[:24] + bytes(range(1, 41))
        + mjpeg[24:],
        "an ICC profile chunk 1 of 2": _after_soi(base, _segment(0xE2, b"ICC_PROFILE\x00\x01\x02" + bytes(128))),
        "an unknown JFIF version": base.replace(b"JFIF\x00\x01\x01", b"JFIF\x00\x03\x01", 1),
        "padding and a driver's leftover buffer": base[:end] + bytes(64) + base[end:] + base[: len(base) // 2]
        + b"\x00\x00\xff\xd9",
        "an EXIF thumbnail and padding": _after_soi(base[:end] + bytes(64) + base[end:],
                                                   _segment(0xE1, b"Exif\x00\x00MM\x00\x2a" + thumbnail)),
        "zeros and fill bytes before the end": base[:end] + bytes(40) + b"\xff" * 5 + base[end:],
        "bytes after the end marker": base + bytes(100) + b"\xff\xd9",
    }
    reference = _opencv(_stray_before_restarts(mjpeg, b""))
    for name, data in frames.items():
        expected = reference if "restart" in name or "APP0" in name else _opencv(data)
        assert np.array_equal(_opencv(data), expected), name  # OpenCV's pixels are the whole frame's
        assert jd.jpeg_damage(data) is None, name
        assert np.array_equal(compressed_to_bgr(Msg("jpeg", data)), expected), name


@CHECKED
def test_damage_within_restart_intervals_and_a_missing_end_are_refused() -> None:
    image, _ = _scene()
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_RST_INTERVAL, 10])[1].tobytes()
    whole = _opencv(jpeg)
    refused = tried = 0
    for at in np.linspace(len(jpeg) // 3, len(jpeg) - 64, 12).astype(int):
        bad = bytearray(jpeg)
        bad[at : at + 8] = bytes(range(17, 25))
        decoded = cv2.imdecode(np.frombuffer(bytes(bad), np.uint8), cv2.IMREAD_COLOR)
        if decoded is None or (np.abs(decoded.astype(int) - whole).max(axis=2) > 40).mean() < 0.001:
            continue  # OpenCV refused it too, or the damage stayed within a few blocks
        tried += 1
        refused += jd.jpeg_damage(bytes(bad)) is not None
    assert tried >= 6 and refused >= tried - 1, (refused, tried)
    # cut without its end marker: OpenCV 5 refuses it itself, OpenCV 4.8 (allowed) decodes it grey
    assert "Premature end of JPEG file" in (jd.jpeg_damage(jpeg[: len(jpeg) // 2]) or "")


@CHECKED
def test_whole_jpegs_of_every_kind_decode_as_opencv_decodes_them() -> None:
    image, _ = _scene()
    for flags in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_OPTIMIZE, 1],
                  [cv2.IMWRITE_JPEG_RST_INTERVAL, 4]):
        jpeg = cv2.imencode(".jpg", image, flags)[1].tobytes()
        assert np.array_equal(compressed_to_bgr(Msg("jpeg", jpeg)),
                              cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
    mono = cv2.imencode(".jpg", image[:, :, 1])[1].tobytes()
    assert compressed_to_bgr(Msg("mono8; jpeg compressed mono8", mono)).shape == image.shape
    from PIL import Image  # matplotlib's dependency; CMYK JPEGs (Adobe) come from print and scanning tools

    buffer = io.BytesIO()
    Image.fromarray(image[:, :, ::-1]).convert("CMYK").save(buffer, "JPEG")
    cmyk = buffer.getvalue()
    assert np.array_equal(compressed_to_bgr(Msg("jpeg", cmyk)), _opencv(cmyk))


def test_without_simplejpeg_a_jpeg_is_decoded_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An optional dependency: a ROS install without it keeps OpenCV's behaviour (what README says)."""
    _, jpeg = _scene()
    cut = jpeg[: len(jpeg) // 2] + b"\xff\xd9"
    monkeypatch.setattr(jd, "simplejpeg", None)
    assert jd.jpeg_damage(cut) is None
    assert compressed_to_bgr(Msg("jpeg", cut)).shape[:2] == (240, 320)
