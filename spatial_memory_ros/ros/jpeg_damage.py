"""Whether libjpeg had to make up part of a JPEG's pixels: a damaged frame, refused rather than processed.

OpenCV's decoder prints libjpeg's warnings to stderr and returns the image anyway: a USB camera's MJPEG frame
cut short by a dropped packet ("premature end of data segment") comes back with its lower part grey, and a
frame with damaged bytes ("bad Huffman code", or "N extraneous bytes" left over when the damaged stream ran out
of blocks early) comes back as garbage from the damage on. Either makes a change mask of the whole damaged part,
and a memory that takes it in. simplejpeg (libjpeg-turbo) raises those warnings in strict mode, so the frame can
be refused with the reason instead.

What is not damage, since a whole frame must never be refused (a camera that sends such frames would be
useless):
- stray bytes between header segments (some Logitech webcams send one on every frame) and metadata segments
  (EXIF, ICC profiles, comments): the scan is checked on a copy rebuilt from the header's own segments, without
  them. A warning left in the header then (an unknown JFIF version, say) is not about the pixels, and the frame
  is not checked;
- a few stray bytes before a restart marker or the end marker (at most STRAY_BYTES as libjpeg counts them, which
  is about 6 fewer than there are: webcams put 1-10 there), and padding before the end marker: one byte value
  repeated, its run no longer than libjpeg's count plus STRAY_BYTES. A damaged stream's leftovers are mostly
  longer and are entropy-coded data; a cut frame filled with zeros up to its end marker has those zeros decoded
  as blocks first, so its run is far longer than the count.
Strict mode stops at its first warning, so after a tolerated one the rest of the scan goes unchecked but for
one count: a single-scan frame with restart markers must have all of them, which a frame cut short does not.
JPEG has no checksum: damage that still parses passes unseen.

Without simplejpeg installed, no JPEG is checked (`CHECKS_JPEG` says which); the decode is OpenCV's either way.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from spatial_memory_ros.ros.compressed_size import JPEG_SOF

simplejpeg: ModuleType | None
try:
    simplejpeg = importlib.import_module("simplejpeg")  # untyped: held as a plain module
except ImportError:  # an optional dependency: a ROS install without it still decodes, unchecked
    simplejpeg = None

CHECKS_JPEG = simplejpeg is not None
STRAY_BYTES = 16  # stray bytes (as libjpeg counts them) before a restart or end marker: a camera's habit
_EXTRANEOUS = re.compile(r"(\d+) extraneous bytes before marker 0x([0-9a-fA-F]{2})")  # JWRN_EXTRANEOUS_DATA
_RESTART, _END, _SCAN = range(0xD0, 0xD8), 0xD9, 0xDA
_KEPT_APPS = frozenset({0xE0, 0xEE})  # JFIF and Adobe: they say the colour space; other APPn and COM are metadata


@dataclass
class _Layout:
    """A JPEG's header segments as the decoder reads them, and where its first scan's data starts."""

    header: list[bytes] = field(default_factory=list)  # each segment, marker included; metadata left out
    scan_at: int = -1  # offset of the first scan's entropy-coded data
    restart_interval: int = 0  # MCUs per restart interval (DRI); 0: none
    mcus: int = 0  # MCUs in a single-component or interleaved baseline scan; 0: not known
    progressive: bool = False


def jpeg_damage(data: np.ndarray | bytes) -> str | None:
    """libjpeg's reason for a JPEG whose scan it had to fill in or skip part of, or None for a whole one (and
    whenever simplejpeg is absent). See the module docstring for what is not counted as damage."""
    if simplejpeg is None:
        return None
    raw = bytes(data)
    layout = _layout(raw)
    if layout is None:
        return None  # no scan found: OpenCV's decoder, which ran first, has said whether it can read it
    rebuilt = b"\xff\xd8" + b"".join(layout.header) + raw[layout.scan_at:]
    try:
        simplejpeg.decode_jpeg_header(rebuilt, strict=True)
    except ValueError:
        return None  # a warning about the header's own segments: not the pixels; the scan is unchecked
    try:
        # GRAY: the check needs the entropy decoding of every block, not the colour conversion
        simplejpeg.decode_jpeg(rebuilt, colorspace="GRAY", strict=True)
    except ValueError as exc:
        message = str(exc)
        if "color conversion" in message.lower():
            return None  # a colour space libjpeg-turbo cannot give as grey: not damage; OpenCV decoded it
        extraneous = _EXTRANEOUS.search(message)
        if extraneous is None or not _tolerated(rebuilt, int(extraneous.group(1)), int(extraneous.group(2), 16)):
            return message  # after a clean header, any error is the scan's: a bogus marker, table or code
    return _missing_restarts(raw, layout)


def _tolerated(data: bytes, count: int, marker: int) -> bool:
    """libjpeg's "count extraneous bytes before marker" is a camera's habit, not damage (module docstring)."""
    if marker in _RESTART:
        return count <= STRAY_BYTES
    if marker != _END:
        return False  # before a table or the next scan of a progressive frame: a damaged scan ran out early
    if count <= STRAY_BYTES:
        return True
    end, _restarts = _end_marker(data)
    if end < 0:
        return False
    before = data[:end].rstrip(b"\xff")
    if not before:
        return False
    value = before[-1]
    run = len(before) - len(before.rstrip(bytes([value])))
    return count <= run <= count + STRAY_BYTES


def _missing_restarts(data: bytes, layout: _Layout) -> str | None:
    """For a single-scan frame with restart markers: a reason when the scan has fewer than its MCUs need (a frame
    cut short after a tolerated warning, which strict decoding does not read past)."""
    if layout.restart_interval == 0 or layout.mcus == 0 or layout.progressive:
        return None
    expected = math.ceil(layout.mcus / layout.restart_interval) - 1
    _end, found = _end_marker(data, layout.scan_at)
    if found >= expected:
        return None
    return f"{found} of its {expected} restart markers: a frame cut short"


def _layout(data: bytes) -> _Layout | None:
    """The header's segments up to the first scan, stray bytes between them skipped; None without a scan."""
    out, i, n = _Layout(), 2, len(data)
    sampling: list[tuple[int, int]] = []
    width = height = 0
    while i + 3 < n:
        if data[i] != 0xFF:  # a stray byte between segments
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF or marker in (0x00, 0x01) or marker in _RESTART:  # fill byte, nothing to keep
            i += 1 if marker == 0xFF else 2
            continue
        if marker == _END:
            return None
        length = int.from_bytes(data[i + 2:i + 4], "big")
        segment = data[i:i + 2 + length]
        if marker in JPEG_SOF and length >= 8:
            height, width = int.from_bytes(segment[5:7], "big"), int.from_bytes(segment[7:9], "big")
            sampling = [(segment[11 + 3 * c] >> 4, segment[11 + 3 * c] & 15)
                        for c in range(segment[9]) if 12 + 3 * c < len(segment)]
            out.progressive = marker in (0xC2, 0xC6, 0xCA, 0xCE)
        elif marker == 0xDD and length >= 4:
            out.restart_interval = int.from_bytes(segment[4:6], "big")
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE) or marker in _KEPT_APPS:
            out.header.append(segment)
        i += 2 + max(length, 0)
        if marker == _SCAN:
            out.scan_at = i
            components = segment[4] if len(segment) > 4 else 0
            out.mcus = _mcus(width, height, sampling, components)
            return out
    return None


def _mcus(width: int, height: int, sampling: list[tuple[int, int]], scan_components: int) -> int:
    """MCUs of a baseline scan: 8x8 blocks of a single component, or the largest sampling factors' blocks of an
    interleaved one; 0 when the header does not say."""
    if not sampling or width == 0 or height == 0 or any(h == 0 or v == 0 for h, v in sampling):
        return 0
    hmax, vmax = max(h for h, _ in sampling), max(v for _, v in sampling)
    if scan_components == 1:
        h, v = sampling[0] if len(sampling) == 1 else (0, 0)
        if h == 0:
            return 0  # one component of several, scanned alone: not a camera's frame; not counted
        return math.ceil(math.ceil(width * h / hmax) / 8) * math.ceil(math.ceil(height * v / vmax) / 8)
    return math.ceil(width / (8 * hmax)) * math.ceil(height / (8 * vmax))


def _end_marker(data: bytes, start: int = 2) -> tuple[int, int]:
    """(offset of the first end-of-image marker from start, where libjpeg stops, or -1 if there is none; the
    restart markers passed on the way). Segments are skipped by their lengths (an EXIF thumbnail's own end marker
    lies inside its APP1), the scan is searched for a marker that is not a stuffed 0xff, a restart marker or a fill
    byte. Data after it (a driver's whole buffer, an earlier frame's leftovers) is not looked at."""
    i, n, restarts = start, len(data), 0
    while i + 1 < n:
        if data[i] != 0xFF:  # inside the scan: on to the next 0xff
            i = data.find(b"\xff", i)
            if i < 0:
                return -1, restarts
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # a fill byte before a marker
            i += 1
        elif marker in (0x00, 0x01) or marker in _RESTART:  # a stuffed 0xff, TEM, a restart marker
            restarts += marker in _RESTART
            i += 2
        elif marker == _END:
            return i, restarts
        elif i + 3 < n:  # a segment with its length (SOS: its header; the scan follows it)
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        else:
            return -1, restarts
    return -1, restarts
