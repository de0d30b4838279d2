"""The classical change detector's pixel comparisons: blurred grey and colour copies, the robust gain and offset
fit, and the colour angle test; pure functions of images, apart from core.change's reference keeping."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import BadInputError
from .turning import wh

_BLUR_KSIZE = (5, 5)  # suppresses sensor noise and sub-pixel jitter before differencing
_FIT_STRIDE = 4  # the gain/offset fit uses every 4th pixel in each direction: plenty, 16x cheaper
_FIT_ITERATIONS = 2  # line refits on the pixels that agree with the robust start (changes are outliers)
_MIN_GRADIENT = 2.0  # grey levels across _FIT_STRIDE px: weaker gradients are noise, no gain in them
_GAIN_RANGE = (0.2, 5.0)  # a fitted gain outside this is not a light change; clamp it
# Colour vectors shorter than this (RGB length, 0..441) have no reliable hue: sensor noise of a few levels
# turns a dark pixel's colour by tens of degrees. 60 is a grey level of about 35.
_MIN_COLOUR_NORM = 60.0
_ONES_1x3 = np.ones((1, 3), np.float32)
# The colour test runs on a copy at most this wide (the grey test keeps full resolution): at 640x480 it
# cost 6.5 ms a frame at full size, ~2 ms at 320x240, and a colour change smaller than 2x2 px is noise.
_COLOUR_WIDTH = 320


def prepare(image: np.ndarray) -> np.ndarray:
    """Validated uint8 (H, W, 3) BGR or (H, W) grey -> (H, W) float32 blurred grey."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise BadInputError(
            f"image must be a uint8 numpy array, got {getattr(image, 'dtype', type(image).__name__)}"
        )
    if image.ndim == 3 and image.shape[2] == 3 and image.size > 0:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif image.ndim == 2 and image.size > 0:
        gray = image
    else:
        raise BadInputError(
            f"image must be a non-empty (H, W, 3) BGR or (H, W) grey, got shape {image.shape}"
        )
    return cv2.GaussianBlur(gray.astype(np.float32), _BLUR_KSIZE, 0)


def prepare_colour(image: np.ndarray) -> np.ndarray | None:
    """(H, W, 3) uint8 BGR -> (h, w, 3) float32 blurred BGR at most _COLOUR_WIDTH wide; None for a grey
    image (no colour to compare)."""
    if image.ndim != 3:
        return None
    h, w = image.shape[:2]
    if w > _COLOUR_WIDTH:
        image = cv2.resize(image, (_COLOUR_WIDTH, max(1, round(h * _COLOUR_WIDTH / w))), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(image, _BLUR_KSIZE, 0).astype(np.float32)  # blurring uint8 is faster, as good


def at_size(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 mask resized (nearest) to size (w, h); itself when it has that size already."""
    return mask if wh(mask) == size else cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)


def full_size(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A (h, w) bool mask of the colour copy at the grey image's (H, W)."""
    return at_size(mask.astype(np.uint8), (shape[1], shape[0])) > 0


def colour_turned(current: np.ndarray, n_c: np.ndarray, base: np.ndarray, cos_max: float) -> np.ndarray:
    """(H, W) bool: the colour vectors (H, W, 3) differ by more than the angle whose cosine is cos_max, both
    bright enough to have a hue; n_c (H, W) is |current|^2. Compared squared (a . b < cos |a| |b|,
    a . b >= 0 for colours): no arccos."""
    dot = channel_sum(cv2.multiply(current, base))
    n_b = channel_sum(cv2.multiply(base, base))
    bright = cv2.min(n_c, n_b) > _MIN_COLOUR_NORM**2
    return bright & (cv2.multiply(dot, dot) < cv2.multiply(n_c, n_b, scale=cos_max * cos_max))


def channel_sum(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 -> (H, W) float32 sum over the channels (OpenCV: several times numpy's speed)."""
    return cv2.transform(image, _ONES_1x3).reshape(image.shape[:2])


def photometric_residual(
    current: np.ndarray, base: np.ndarray, threshold: float
) -> tuple[np.ndarray, float, float]:
    """|current - (gain * base + offset)| (H, W), with gain and offset fitted robustly; and (gain, offset).

    A least-squares fit on all pixels would explain a change of view away (uncorrelated images fit
    best with gain ~ 0 and offset = the mean). So the start is robust and view-sensitive: a light's
    gain scales image gradients, so gain = the median per-pixel ratio of gradient magnitudes, and
    offset = the median difference. Line fits on the pixels within threshold then refine it, which a
    changed region (up to about half the image) does not pull towards itself.
    """
    c_img = current[::_FIT_STRIDE, ::_FIT_STRIDE].astype(np.float64)
    b_img = base[::_FIT_STRIDE, ::_FIT_STRIDE].astype(np.float64)
    grad_c = np.concatenate([np.abs(np.diff(c_img, axis=0)).ravel(), np.abs(np.diff(c_img, axis=1)).ravel()])
    grad_b = np.concatenate([np.abs(np.diff(b_img, axis=0)).ravel(), np.abs(np.diff(b_img, axis=1)).ravel()])
    c, b = c_img.ravel(), b_img.ravel()
    # Clipped pixels do not follow a gain: a brighter light saturates them.
    usable = (c > 2) & (c < 253) & (b > 2) & (b < 253)
    if usable.sum() < 16:
        return np.abs(current - base), 1.0, 0.0
    # Per-pixel gradient ratios: a changed region (ratio ~0 or large) is outvoted by the rest up to
    # half the image, and a change of view gives unrelated gradients whose ratio has median ~1.
    textured = grad_b > _MIN_GRADIENT
    gain = float(np.median(grad_c[textured] / grad_b[textured])) if textured.sum() >= 16 else 1.0
    gain = float(np.clip(gain, *_GAIN_RANGE))
    offset = float(np.median(c[usable] - gain * b[usable]))
    for _ in range(_FIT_ITERATIONS):
        inliers = usable & (np.abs(c - (gain * b + offset)) < threshold)
        if inliers.sum() < 16:
            break
        bi, ci = b[inliers], c[inliers]
        b_mean, c_mean = bi.mean(), ci.mean()
        var = ((bi - b_mean) ** 2).mean()
        if var > 1.0:  # a textureless view cannot separate gain from offset: keep the gain
            gain = float(np.clip(((bi - b_mean) * (ci - c_mean)).mean() / var, *_GAIN_RANGE))
        offset = float(c_mean - gain * b_mean)
    return np.abs(current - np.float32(gain) * base - np.float32(offset)), gain, offset
