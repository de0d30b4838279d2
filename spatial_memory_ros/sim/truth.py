"""Change-mask ground truth: a per-texel memory of what lay on the floor when each place was last seen.

See the definition in sim/scene.py. Only texels that some item placement can ever cover are remembered:
everywhere else the static content never changes, so their memory would always agree.
"""

from __future__ import annotations

import cv2
import numpy as np

from .floor import FloorGrid, board_corners
from .script import Placement

UNKNOWN = np.uint16(65535)  # never seen: the first sighting sets the reference, it is not a change
SETTLE_EPS_S = 1e-4  # stamps are kept as float32 (the grid is large); this absorbs their rounding


class ChangeTruth:
    """Per-texel reference layout with a settle time; labels are placement index + 1, 0 = bare floor."""

    def __init__(self, grid: FloorGrid, placements: list[Placement], edges_m: list[float], settle_s: float):
        if settle_s < 0:
            raise ValueError("change_settle_s must be >= 0")
        self.grid, self.settle_s = grid, settle_s
        self.corners = [board_corners(p.pose, edges_m[p.item]) for p in placements]
        shape = (grid.height, grid.width)
        self.cur = np.zeros(shape, np.uint16)
        self.ref = np.full(shape, UNKNOWN, np.uint16)
        self.cand = np.full(shape, UNKNOWN, np.uint16)
        self.since = np.zeros(shape, np.float32)
        self._current: tuple[int, ...] | None = None
        # The texels each distinct footprint can cover (flat indices) and their homogeneous coordinates;
        # a frame only projects the footprints whose box is in view.
        self.regions: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (idx, (3, N) texels, (3, 4) box)
        seen_masks: set[bytes] = set()
        for c in self.corners:
            tex = grid.to_tex(c)
            u0, v0 = np.maximum(np.floor(tex.min(axis=0)).astype(int) - 2, 0)
            u1, v1 = np.minimum(np.ceil(tex.max(axis=0)).astype(int) + 3, (grid.width, grid.height))
            mask = np.zeros((v1 - v0, u1 - u0), np.uint8)
            cv2.fillPoly(mask, [np.round((tex - (u0, v0)) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
            mask = cv2.dilate(
                mask, np.ones((3, 3), np.uint8)
            )  # the warp's nearest sampling may round outwards
            v, u = np.nonzero(mask)
            u, v = u + u0, v + v0
            key = np.array([u0, v0, u1, v1]).tobytes() + mask.tobytes()
            if key in seen_masks or u.size == 0:  # e.g. two items put down on the same spot
                continue
            seen_masks.add(key)
            box = np.array([[u0, u1, u1, u0], [v0, v0, v1, v1], [1, 1, 1, 1]], np.float64)
            self.regions.append(
                (v * grid.width + u, np.stack([u, v, np.ones_like(u)]).astype(np.float64), box)
            )
        self._proj_key: bytes | None = None
        self._proj: tuple[np.ndarray, np.ndarray] | None = None
        self.version = 0  # bumped whenever the reference changes
        self._cur_warp: tuple[tuple, np.ndarray] | None = None  # a static camera re-warps only on change
        self._ref_warp: tuple[tuple, np.ndarray] | None = None

    def set_current(self, placements: tuple[int, ...]) -> None:
        """The placements lying on the floor now; re-rasterised only when they change."""
        if placements == self._current:
            return
        self._current = placements
        self.cur.fill(0)
        for p in placements:
            self.grid.fill(self.cur, self.corners[p], p + 1)

    def labels(self, H_img_tex: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(current, reference) label images (H, W) uint16 sampled at each pixel's floor texel."""
        h = H_img_tex.tobytes()
        flags = cv2.INTER_NEAREST
        if self._cur_warp is None or self._cur_warp[0] != (h, self._current):
            cur = cv2.warpPerspective(self.cur, H_img_tex, size, flags=flags, borderValue=0)
            self._cur_warp = ((h, self._current), cur)
        if self._ref_warp is None or self._ref_warp[0] != (h, self.version):
            ref = cv2.warpPerspective(self.ref, H_img_tex, size, flags=flags, borderValue=int(UNKNOWN))
            self._ref_warp = ((h, self.version), ref)
        return self._cur_warp[1], self._ref_warp[1]

    def update(
        self, t: float, H_img_tex: np.ndarray, seen: np.ndarray, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Learn what is seen at t, then return (change mask (H, W) bool, current labels (H, W) uint16).

        seen: (H, W) bool, pixels whose floor is in view and not hidden by an agent. A change is absorbed
        once it has lasted settle_s, but never in the frame that first shows it (so settle 0 still marks
        a change once).
        """
        key = H_img_tex.tobytes()
        if key != self._proj_key:  # a static camera projects the remembered texels once
            self._proj = self._project(H_img_tex, seen.shape)
            self._proj_key = key
        assert self._proj is not None
        tex_idx, pix_idx = self._proj
        ti = tex_idx[seen.ravel()[pix_idx]]
        s = self.cur.ravel()[ti]
        ref, cand, since = self.ref.ravel(), self.cand.ravel(), self.since.ravel()
        # a look that has lasted settle_s since it was first shown is the reference, time out of view included: one
        # shown briefly, then gone while out of view, was overwritten below before it could be, and its going was no
        # change when the place was next seen
        grown = ti[(cand[ti] != UNKNOWN) & (ref[ti] != cand[ti]) & self._settled(np.float32(t) - since[ti])]
        ref[grown] = cand[grown]
        first = ref[ti] == UNKNOWN
        ref[ti[first]] = s[first]
        new = cand[ti] != s
        cand[ti[new]] = s[new]
        since[ti[new]] = t
        ts = ti[self._settled(np.float32(t) - since[ti])]
        if grown.size or np.any(first) or np.any(ref[ts] != cand[ts]):
            ref[ts] = cand[ts]
            self.version += 1
        cur_img, ref_img = self.labels(H_img_tex, size)
        return seen & (ref_img != UNKNOWN) & (ref_img != cur_img), cur_img

    def _settled(self, age: np.ndarray) -> np.ndarray:
        """Which looks of this age (s since first shown) replace the reference: settle_s, never in their first frame."""
        return (age >= self.settle_s - SETTLE_EPS_S) & (age > 0)

    def _project(self, H_img_tex: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(flat texel indices, flat pixel indices) of the remembered texels that fall inside the image."""
        h, w = shape[:2]
        tex, pix = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for idx, tex_h, box in self.regions:
            b = H_img_tex @ box
            if np.all(b[2] > 0):
                bu, bv = b[0] / b[2], b[1] / b[2]
                if bu.max() < 0 or bv.max() < 0 or bu.min() >= w or bv.min() >= h:
                    continue
            elif np.all(b[2] <= 0):
                continue
            p = H_img_tex @ tex_h
            ok = p[2] > 0
            px = np.floor(p[0, ok] / p[2, ok] + 0.5).astype(np.int64)
            py = np.floor(p[1, ok] / p[2, ok] + 0.5).astype(np.int64)
            inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            tex.append(idx[ok][inside])
            pix.append(py[inside] * w + px[inside])
        return np.concatenate(tex), np.concatenate(pix)
