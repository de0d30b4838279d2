"""Annotation drawing on BGR images: change-mask overlay, tags, tracks, captions, contact sheets.

Shared by the node's debug_image, `spatial-memory run` and the demo. Plain OpenCV, no ROS. The draw_*
functions paint into the image they are given (and return it); annotate() works on a copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from .core.types import FrameResult, TagDetection, TrackInfo, TrackState

FONT = cv2.FONT_HERSHEY_SIMPLEX
MASK_COLOR = (0, 0, 255)  # BGR red
TAG_COLOR = (0, 220, 255)  # BGR yellow
LOST_COLOR = (150, 150, 150)


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.array([[[hue, 220, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def as_bgr(image: np.ndarray) -> np.ndarray:
    """A BGR copy of an (H, W) grey or (H, W, 3) BGR uint8 image."""
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()


def overlay_mask(
    image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = MASK_COLOR, alpha: float = 0.45
) -> np.ndarray:
    """Tint the pixels where mask (H, W) is non-zero (alpha 0: outline only), and outline the regions."""
    on = (mask > 0).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(on)  # blending only the masked box keeps this cheap for small changes
    if w == 0 or h == 0:
        return image
    if alpha > 0:
        roi = image[y : y + h, x : x + w]
        tint = np.empty_like(roi)
        tint[:] = color
        np.copyto(
            roi, cv2.addWeighted(roi, 1.0 - alpha, tint, alpha, 0.0), where=on[y : y + h, x : x + w, None] > 0
        )
    contours, _ = cv2.findContours(on, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(image, contours, -1, color, 1, cv2.LINE_AA)
    return image


def _label(image: np.ndarray, text: str, x: float, y: float, color: tuple[int, int, int]) -> None:
    """Text on a filled box, kept inside the image."""
    scale, thick = 0.4, 1
    (w, h), base = cv2.getTextSize(text, FONT, scale, thick)
    H, W = image.shape[:2]
    x0 = int(min(max(x, 0), max(W - w - 2, 0)))
    y0 = int(min(max(y - h - base - 2, 0), max(H - h - base - 2, 0)))
    cv2.rectangle(image, (x0, y0), (x0 + w + 2, y0 + h + base + 2), color, -1)
    dark = sum(color) > 380  # light box -> black text
    cv2.putText(
        image,
        text,
        (x0 + 1, y0 + h + 1),
        FONT,
        scale,
        (0, 0, 0) if dark else (255, 255, 255),
        thick,
        cv2.LINE_AA,
    )


def draw_tags(
    image: np.ndarray, tags: Sequence[TagDetection], names: Mapping[int, str] | None = None
) -> np.ndarray:
    """Outline each tag, mark its first (top-left) corner and write its id (and item name)."""
    for tag in tags:
        pts = np.round(tag.corners).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [pts], True, TAG_COLOR, 2, cv2.LINE_AA)
        cv2.circle(image, tuple(int(v) for v in pts[0, 0]), 3, (0, 0, 255), -1, cv2.LINE_AA)
        name = (names or {}).get(tag.tag_id)
        text = f"#{tag.tag_id}" + (f" {name}" if name else "")
        x, y = tag.corners[:, 0].min(), tag.corners[:, 1].max() + 16
        _label(image, text, x, y, TAG_COLOR)
    return image


def draw_tracks(
    image: np.ndarray, tracks: Sequence[TrackInfo], *, show_tentative: bool = False
) -> np.ndarray:
    """Box and label per track: id, item (or label), and the map position when known.

    Confirmed tracks are drawn in their colour, lost ones thin and grey; tentative ones only on request.
    """
    H, W = image.shape[:2]
    for t in tracks:
        if t.state == TrackState.TENTATIVE and not show_tentative:
            continue
        lost = t.state == TrackState.LOST
        color = LOST_COLOR if lost else track_color(t.track_id)
        x1, y1, x2, y2 = (int(round(v)) for v in t.box)
        if x2 <= 0 or y2 <= 0 or x1 >= W or y1 >= H:  # a lost track's prediction may have left the view
            continue
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, 1 if lost else 2)
        text = f"{t.track_id} {t.item or t.label}"
        if t.position is not None and not t.is_dynamic:
            text += f" ({t.position[0]:.2f},{t.position[1]:.2f})"
        _label(image, text + (" lost" if lost else ""), x1, y1, color)
    return image


def draw_caption(image: np.ndarray, text: str) -> np.ndarray:
    """A dark banner with white text along the top edge (one line per '\\n')."""
    lines = text.split("\n")
    h = 16 * len(lines) + 4
    band = image[:h]
    band[:] = (band * 0.35).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(image, line, (4, 14 + 16 * i), FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def annotate(
    image: np.ndarray, result: FrameResult, *, names: Mapping[int, str] | None = None, caption: str = ""
) -> np.ndarray:
    """A BGR copy of image with the change mask, tags, confirmed/lost tracks and an optional caption."""
    out = as_bgr(image)
    overlay_mask(out, result.change_mask)
    draw_tags(out, result.tags, names)
    draw_tracks(out, result.tracks)
    if caption:
        draw_caption(out, caption)
    return out


def contact_sheet(
    images: Sequence[np.ndarray], cols: int, *, cell_width: int = 320, pad: int = 4
) -> np.ndarray:
    """Tile BGR images row-major into one image, each scaled to cell_width (aspect kept), grey padding."""
    if not images or cols < 1:
        raise ValueError("contact_sheet needs at least one image and cols >= 1")
    h0, w0 = images[0].shape[:2]
    cell_h = int(round(h0 * cell_width / w0))
    rows = (len(images) + cols - 1) // cols
    sheet = np.full((rows * (cell_h + pad) + pad, cols * (cell_width + pad) + pad, 3), 40, np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        y, x = pad + r * (cell_h + pad), pad + c * (cell_width + pad)
        sheet[y : y + cell_h, x : x + cell_width] = cv2.resize(
            as_bgr(img), (cell_width, cell_h), interpolation=cv2.INTER_AREA
        )
    return sheet
