"""Whether libjpeg had to make up part of a JPEG's pixels: a damaged frame, refused rather than processed.

OpenCV's decoder prints libjpeg's warnings to stderr and returns the image anyway: a USB camera's MJPEG frame
cut short by a dropped packet ("premature end of data segment") comes back with its lower part grey, and a
frame with a damaged byte ("bad Huffman code", or "N extraneous bytes" left over when the damaged stream ran out
of blocks early) comes back as garbage from the damage on. Either makes a change mask of the whole damaged part,
and a memory that takes it in. simplejpeg (libjpeg-turbo) raises those warnings in strict mode, so the frame can
be refused with the reason instead.

One warning is a camera's habit, not damage: some webcams pad every MJPEG frame before its end marker (zeros or a
repeated byte), which libjpeg reports as extraneous bytes before marker 0xd9. Padding is one byte value repeated;
what a damaged stream leaves over is entropy-coded data. Only the second is refused.

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
_EXTRANEOUS_BEFORE_END = re.compile(r"(\d+) extraneous bytes before marker 0xd9")


def jpeg_damage(data: np.ndarray | bytes) -> str | None:
    """libjpeg's warning for a JPEG it had to fill in or skip part of, or None for a whole one (and whenever
    simplejpeg is absent). An error that is not damage (a colour space libjpeg-turbo cannot convert, say) is
    None too: OpenCV's decoder, which runs next, says whether it can read the file."""
    if simplejpeg is None:
        return None
    try:
        # GRAY: the check needs the entropy decoding of every block, not the colour conversion
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
    except ValueError as exc:
        message = str(exc)
        extraneous = _EXTRANEOUS_BEFORE_END.search(message)
        if extraneous is not None and _is_padding(bytes(data), int(extraneous.group(1))):
            return None
        if "Corrupt JPEG data" in message or "Premature end of JPEG file" in message or "Unsupported marker" in message:
            return message
    return None


def _is_padding(data: bytes, count: int) -> bool:
    """The count bytes before the last end marker (past any 0xff fill bytes) are one value repeated."""
    end = data.rfind(b"\xff\xd9")
    if end < 0 or count <= 0:
        return False
    tail = data[:end].rstrip(b"\xff")[-count:]
    return len(tail) == count and len(set(tail)) == 1
