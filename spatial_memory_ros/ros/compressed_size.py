"""The pixel size a JPEG or PNG declares in its header, read before anything is decoded.

A compressed image is a few kilobytes that may declare any size: a PNG of one colour at 30,000 x 30,000 px is
about 1 MB and decodes to 2.7 GB of BGR (OpenCV's own limit is 2^30 pixels). Reading the header first lets the
decoder refuse it with a message instead of allocating. Other formats OpenCV reads (WebP, TIFF, BMP) are not
parsed here; OpenCV's limit still applies to them.
"""

from __future__ import annotations

import numpy as np

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); C4, C8 and CC are tables, not frames
JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI: markers with no segment after them


def compressed_kind(data: np.ndarray | bytes) -> str | None:
    """"png" or "jpeg" by the file's signature; None for another format."""
    head = bytes(data[:8])
    if head == _PNG_SIGNATURE:
        return "png"
    return "jpeg" if head[:2] == b"\xff\xd8" else None


def declared_size(data: np.ndarray | bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's start-of-frame segment; None for another format or a
    header too short or malformed to say (neither libpng nor libjpeg would decode such a header either)."""
    kind = compressed_kind(data)
    if kind == "png":
        ihdr = bytes(data[8:24])
        if len(ihdr) < 16 or ihdr[4:8] != b"IHDR":
            return None
        return int.from_bytes(ihdr[8:12], "big"), int.from_bytes(ihdr[12:16], "big")
    if kind == "jpeg":
        # the whole buffer: metadata (EXIF, ICC) before the frame header may be any size; the loop jumps from
        # segment to segment, so it reads a few dozen headers, not every byte
        return _jpeg_size(bytes(data))
    return None


def _jpeg_size(buf: bytes) -> tuple[int, int] | None:
    i = 2
    while True:
        # libjpeg skips stray bytes between segments (with a warning: some webcams send one on every frame), and
        # so must this, or such a frame would be decoded without its size checked
        i = buf.find(b"\xff", i)
        if i < 0 or i + 4 > len(buf):
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0x00 or marker in _JPEG_NO_LENGTH:  # a stuffed zero is a stray byte too
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan or end of image before any frame header
            return None
        length = int.from_bytes(buf[i + 2:i + 4], "big")
        if marker in JPEG_SOF:
            if i + 9 > len(buf):
                return None
            return int.from_bytes(buf[i + 7:i + 9], "big"), int.from_bytes(buf[i + 5:i + 7], "big")
        if length < 2:
            return None
        i += 2 + length
