"""The floor as a texture in the map plane: procedural appearance, item boards and the map<->texel maps.

Texel (u, v) (integer centres, OpenCV convention) covers map x in [x1 + u/s, x1 + (u+1)/s) and likewise y,
with s = px_per_m. The same grid carries the change-truth labels (sim/truth.py), so both agree exactly.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..core.tags import render_tag
from .spec import FloorSpec, ItemSpec, Pose2

TAG_CELLS = 8  # AprilTag 36h11 edge in cells, black border included


class FloorGrid:
    """Geometry of the floor texture: size and the affine maps between texels and the map plane."""

    def __init__(self, spec: FloorSpec) -> None:
        x1, y1, x2, y2 = spec.extent
        if x2 <= x1 or y2 <= y1 or spec.px_per_m <= 0:
            raise ValueError(f"floor extent {spec.extent} must be x1 < x2, y1 < y2 with px_per_m > 0")
        s = spec.px_per_m
        self.spec = spec
        self.width = int(math.ceil((x2 - x1) * s))
        self.height = int(math.ceil((y2 - y1) * s))
        self.A_tex_map = np.array([[s, 0.0, -x1 * s - 0.5], [0.0, s, -y1 * s - 0.5], [0.0, 0.0, 1.0]])
        self.A_map_tex = np.linalg.inv(self.A_tex_map)

    def to_tex(self, xy: np.ndarray) -> np.ndarray:
        """Map (N, 2) m -> texel coordinates (N, 2) float."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return xy @ self.A_tex_map[:2, :2].T + self.A_tex_map[:2, 2]

    def fill(self, img: np.ndarray, poly_xy: np.ndarray, value: float | tuple) -> None:
        """Fill a map polygon (N, 2) m into a texel-grid image, 1/16-texel precise."""
        pts = np.round(self.to_tex(poly_xy) * 16).astype(np.int32)
        cv2.fillPoly(img, [pts], value, lineType=cv2.LINE_8, shift=4)


def board_corners(pose: Pose2, edge_m: float) -> np.ndarray:
    """(4, 2) map corners of a square lying face up at pose, in tag order tl, tr, br, bl.

    Seen from above, the image of the board is upright when yaw = 0: its columns run along +x and its
    rows along -y, so the tag frame is x = (cos yaw, sin yaw), z = up, as OpenCV's marker frame expects.
    """
    h = edge_m / 2
    local = np.array([[-h, h], [h, h], [h, -h], [-h, -h]])
    c, s = math.cos(pose[2]), math.sin(pose[2])
    return local @ np.array([[c, s], [-s, c]]) + np.array(pose[:2])


def render_floor(spec: FloorSpec, grid: FloorGrid, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 BGR floor texture: tiles, stains, footprints, painted lines, grain."""
    h, w = grid.height, grid.width
    s = spec.px_per_m
    grey = np.zeros((h, w), np.float32)
    if spec.tile_m > 0:
        nu, nv = int(math.ceil(w / (spec.tile_m * s))) + 1, int(math.ceil(h / (spec.tile_m * s))) + 1
        jitter = rng.uniform(-spec.tile_jitter, spec.tile_jitter, (nv, nu)).astype(np.float32)
        iu = ((np.arange(w) + 0.5) / (spec.tile_m * s)).astype(np.int32)
        iv = ((np.arange(h) + 0.5) / (spec.tile_m * s)).astype(np.int32)
        grey += jitter[iv[:, None], iu[None, :]]
    if spec.blotch > 0:
        small = rng.standard_normal((max(2, h // 40), max(2, w // 40))).astype(np.float32)
        grey += spec.blotch * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = np.array(spec.base_color, np.float32)
    tex += grey[:, :, None]
    x1, y1 = spec.extent[:2]
    if spec.tile_m > 0:  # grout lines
        step = spec.tile_m * s
        for k in range(int(w / step) + 1):
            cv2.line(tex, (int(k * step), 0), (int(k * step), h - 1), (70.0, 70.0, 70.0), 1)
        for k in range(int(h / step) + 1):
            cv2.line(tex, (0, int(k * step)), (w - 1, int(k * step)), (70.0, 70.0, 70.0), 1)
    for fp in spec.footprints:
        rx1, ry1, rx2, ry2 = fp.rect
        rect = np.array([[rx1, ry1], [rx2, ry1], [rx2, ry2], [rx1, ry2]])
        grid.fill(tex, rect, tuple(float(c) for c in fp.color))
        edge = tuple(0.6 * float(c) for c in fp.color)
        pts = np.round(grid.to_tex(rect)).astype(np.int32)
        cv2.polylines(tex, [pts], True, edge, max(1, int(0.04 * s)))
        if fp.cross:  # diagonals: racks and furniture read as objects, not as floor paint
            cv2.line(tex, tuple(pts[0]), tuple(pts[2]), edge, max(1, int(0.02 * s)))
            cv2.line(tex, tuple(pts[1]), tuple(pts[3]), edge, max(1, int(0.02 * s)))
    for a, b in spec.lines:
        pa, pb = np.round(grid.to_tex(np.array([a, b]))).astype(np.int32)
        color = tuple(float(c) for c in spec.line_color)
        cv2.line(tex, tuple(pa), tuple(pb), color, max(1, int(spec.line_width_m * s)))
    if spec.grain > 0:
        tex += (spec.grain * rng.standard_normal((h, w), dtype=np.float32))[:, :, None]
    return np.clip(tex, 0, 255).astype(np.uint8)


def render_board(item: ItemSpec, px_per_cell: int = 10) -> tuple[np.ndarray, float]:
    """((N, N, 3) uint8 BGR board with the item's tag in its centre, board edge m).

    The edge is board_m rounded so that the margins are whole pixels: the tag keeps exactly tag_m.
    """
    if not 0 < item.tag_m < item.board_m:
        raise ValueError(f"item {item.name!r}: need 0 < tag_m < board_m, got {item.tag_m}, {item.board_m}")
    tag_px = TAG_CELLS * px_per_cell
    board_px = int(round(tag_px * item.board_m / item.tag_m))
    board_px += (board_px - tag_px) % 2  # equal margins
    board = np.full((board_px, board_px, 3), 235, np.uint8)
    m = (board_px - tag_px) // 2
    board[m : m + tag_px, m : m + tag_px] = render_tag(item.tag_id, tag_px)[:, :, None]
    return board, board_px * item.tag_m / tag_px
