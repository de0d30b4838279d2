"""Whether libjpeg had to make up part of a JPEG's pixels: a damaged frame, refused rather than processed.

OpenCV's decoder prints libjpeg's warnings to stderr and returns the image anyway: a USB camera's MJPEG frame
cut short by a dropped packet ("premature end of data segment") comes back with its lower part grey, and a
frame with damaged bytes ("bad Huffman code", or "N extraneous bytes" left over when the damaged stream ran out
of blocks early) comes back as garbage from the damage on. Either makes a change mask of the whole damaged part,
and a memory that takes it in. simplejpeg (libjpeg-turbo) raises those warnings in strict mode, so the frame can
be refused with the reason instead.

What is not damage, since a whole frame must never be refused (a camera that sends such frames would be
useless):
- a warning about the header (a bad ICC profile chunk, an unknown JFIF version, a stray byte between header
  segments, which some Logitech webcams send on every frame): simplejpeg's header parse raises it first. The
  pixels are not checked then: strict mode stops at its first warning.
- a few stray bytes before a marker in the scan (at most STRAY_BYTES: webcams put 1-10 before restart markers
  and the end marker), and any run of one repeated byte before the end marker (a webcam's padding). A damaged
  stream's leftovers are mostly longer (a median 93 bytes before a restart marker, 2 in 228 of 10 or fewer, in
  the review of this check) and are entropy-coded data, not one value.
JPEG has no checksum: damage that still parses passes unseen.

Without simplejpeg installed, no JPEG is checked (`CHECKS_JPEG` says which); the decode is OpenCV's either way.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

import numpy as np

simplejpeg: ModuleType | None
try:
    simplejpeg = importlib.import_module("simplejpeg")  # untyped: held as a plain module
except ImportError:  # an optional dependency: a ROS install without it still decodes, unchecked
    simplejpeg = None

CHECKS_JPEG = simplejpeg is not None
STRAY_BYTES = 16  # stray bytes before a scan's marker that are a camera's habit, not damage
# libjpeg-turbo's warnings about the compressed scan (jerror.h: JWRN_HIT_MARKER, JWRN_HUFF_BAD_CODE,
# JWRN_ARITH_BAD_CODE, JWRN_MUST_RESYNC, JWRN_JPEG_EOF) and the error a damaged scan's bogus marker raises
_SCAN_DAMAGE = ("premature end of data segment", "bad Huffman code", "bad arithmetic code", "instead of RST",
                "Premature end of JPEG file", "Unsupported marker")
_EXTRANEOUS = re.compile(r"(\d+) extraneous bytes before marker 0x([0-9a-fA-F]{2})")  # JWRN_EXTRANEOUS_DATA


def jpeg_damage(data: np.ndarray | bytes) -> str | None:
    """libjpeg's warning for a JPEG whose scan it had to fill in or skip part of, or None for a whole one (and
    whenever simplejpeg is absent). See the module docstring for what is not counted as damage. An error that is
    not about the scan (a colour space libjpeg-turbo cannot convert, say) is None too: OpenCV's decoder says
    whether it can read the file."""
    if simplejpeg is None:
        return None
    try:
        simplejpeg.decode_jpeg_header(data, strict=True)
    except ValueError:
        return None  # the header warns (or is unreadable, which OpenCV's decode reports): the scan is unchecked
    try:
        # GRAY: the check needs the entropy decoding of every block, not the colour conversion
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
    except ValueError as exc:
        message = str(exc)
        extraneous = _EXTRANEOUS.search(message)
        if extraneous is not None:
            count, marker = int(extraneous.group(1)), int(extraneous.group(2), 16)
            if count <= STRAY_BYTES or (marker == 0xD9 and _is_padding(bytes(data), count)):
                return None
            return message
        if any(text in message for text in _SCAN_DAMAGE):
            return message
    return None


def _is_padding(data: bytes, count: int) -> bool:
    """The count bytes before the end marker libjpeg stops at (past any 0xff fill bytes) are one value
    repeated."""
    end = _end_marker(data)
    if end < 0:
        return False
    tail = data[:end].rstrip(b"\xff")[-count:]
    return len(tail) == count and len(set(tail)) == 1


def _end_marker(data: bytes) -> int:
    """Offset of the first end-of-image marker after the header's segments, where libjpeg stops: segments are
    skipped by their lengths (an EXIF thumbnail's own end marker lies inside its APP1), the scan is searched for
    a marker that is not a stuffed 0xff, a restart marker or a fill byte. Data after it (a driver's whole buffer,
    an earlier frame's leftovers) is not looked at. -1 if there is none."""
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:  # inside the scan: on to the next 0xff
            i = data.find(b"\xff", i)
            if i < 0:
                return -1
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # a fill byte before a marker
            i += 1
        elif marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD7:  # a stuffed 0xff, TEM, a restart marker
            i += 2
        elif marker == 0xD9:
            return i
        elif i + 3 < n:  # a segment with its length (SOS: its header; the scan follows it)
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        else:
            return -1
    return -1
