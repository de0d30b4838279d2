"""A memory of how the floor looked, place by place, for change masks from a MOVING camera.

A background model per pixel (core.change, MOG2) is useless once the camera moves: a pixel sees another
place every frame. This memory is kept in floor coordinates instead. Each frame, the image is warped onto
the floor plane (z = 0 in the map) with the camera's pose and intrinsics, and each floor cell in view is
compared with what that cell looked like when the camera last saw it, however long ago and from wherever
the patrol was then. A cell that looks different is a change for ``settle_s`` seconds from when it was
first seen so, then the new look becomes the cell's reference (an item put down stays marked for a while,
then becomes part of the place), which is the benchmark's definition of a scene change (sim.truth).

What it can and cannot see:
- Things lying on the floor (boxes, pallets, items put down or taken away) project to the same cells from
  any viewpoint, so their comparison is fair. Anything standing up (people, shelves' uprights) smears
  along the camera ray and looks different from each viewpoint; the caller passes the pixels it already
  calls changed (``exclude``: the agents the learned model found) and they are neither compared nor
  learned. Only floor the image resolves is looked at: where one pixel spans more than ``max_footprint_m``
  along the viewing ray (a grazing view far away: pose errors and blur dominate there), or beyond
  ``max_range_m``, the floor is not compared. A camera high on a mast resolves the floor much farther
  than one low on a robot, so the reach follows the camera's height instead of a fixed distance.
- Cells are compared only with references seen at a similar distance (``range_ratio``): a cell last seen
  sharp from 2 m and now blurred from 7 m would differ at every edge. A cell differs when both it and its
  smoothed neighbourhood do, after one brightness gain for the whole frame (lights, exposure).
- The pose is a localiser's, a little off every frame: the memory draws its floor into the view and turns
  the pose by the picture shift, measures how far the pose still is off, and forgives a cell the difference
  its edges make over that error (core.floor_pose). An exact pose measures about nothing and is compared as
  if trusted.
- A frame where most of the compared floor differs (``max_changed_fraction``: a fast turn's blur, a bad
  pose) is no evidence: it marks and teaches nothing.

Bounded memory: the map is a torus of ``cells`` x ``cells`` floor cells (51.2 m at the defaults); places
further apart than that share cells, which a robot covering a larger floor would see as false changes
the first time it crosses into the next tile. Three float32 colours plus two per-cell numbers: 20 bytes
a cell, 21 MB at the defaults, per camera, whatever the run's length.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import BadInputError
from .floor_change_config import FloorChangeConfig
from .floor_pose import PoseErrorMeter, align, edge_allowance, grey, pose_reach, shift_cells
from .geometry import invert, scale_intrinsics

Window = tuple[tuple[float, float], tuple[int, int]]  # ((x0, y0) m of the corner cell's corner, (rows, cols))
_GAIN_RANGE = (0.2, 5.0)  # a fitted gain outside this is no light change (a light off in a home: 0.45)
_SATURATED = 250.0  # a look this bright in any channel may be clipped: it tells no gain and teaches no drift


# s: _since is float32 from t0, whose step at 1e5 s is 8 ms; beyond it t0 moves up
_REBASE_S = 1e5


class FloorChangeMap:
    """Per-camera floor memory; update() returns the frame's scene-change mask."""

    def __init__(self, config: FloorChangeConfig | None = None) -> None:
        self.config = (config or FloorChangeConfig()).validate()
        n = self.config.cells
        self._ref = np.zeros((n, n, 3), np.float32)  # the cell's look (BGR)
        self._range = np.zeros((n, n), np.float32)  # distance it was seen from; 0 = never seen
        self._since = np.full((n, n), np.nan, np.float32)  # when the cell first looked different; NaN = same
        # _since counts from the first stamp this map saw, not from 0: a ROS stamp (1.7e9 s) in float32 steps
        # by 128 s, which made the 2 s settle time about a minute
        self._t0: float | None = None
        self._last_t = -np.inf
        self._rays: tuple[tuple[bytes, int, int], np.ndarray] | None = None
        self._pose_error = PoseErrorMeter(self.config.jitter_frames)
        self._points: list[tuple[tuple[bytes, bytes, int, int], tuple[np.ndarray, np.ndarray]]] = []

    @property
    def pose_error_deg(self) -> float:
        """The pose's rotation error (std per axis, deg) as the picture measured it (0 without align)."""
        return self._pose_error.deg

    def _tolerance_deg(self) -> float:
        """The rotation the comparison allows for: the configured one, else tolerance_sigmas measured stds."""
        fixed = self.config.pose_tolerance_deg
        return float(fixed) if fixed is not None else self.config.tolerance_sigmas * self.pose_error_deg

    @property
    def nbytes(self) -> int:
        """The memory's size in bytes; it never grows."""
        return sum(a.nbytes for a in (self._ref, self._range, self._since))

    def reset(self) -> None:
        """Forget every place."""
        self._range.fill(0.0)
        self._since.fill(np.nan)
        self._t0, self._last_t = None, -np.inf

    def update(self, image_bgr: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray, stamp: float,
               exclude: np.ndarray | None = None) -> np.ndarray:
        """Compare the frame with the memory, learn it, and return (H, W) uint8: 255 = the floor there changed.

        K (3, 3) intrinsics of this image; T_map_cam (4, 4) camera optical frame in the map (floor z = 0);
        exclude: (H, W) mask of pixels not to compare or learn (non-zero = excluded), e.g. moving agents.
        """
        cfg = self.config
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise BadInputError(f"image must be (H, W, 3) uint8, got {image_bgr.shape} {image_bgr.dtype}")
        h, w = image_bgr.shape[:2]
        if exclude is not None and exclude.shape[:2] != (h, w):
            raise BadInputError(f"exclude mask is {exclude.shape[:2]} but the image is {(h, w)}")
        K = np.asarray(K, np.float64)
        if w <= cfg.work_width:
            return self._update(image_bgr, K, T_map_cam, stamp, exclude)
        # A wider image is shrunk first: a 5 cm cell is about a pixel at 5 m in 320 px, so more pixels add
        # cost (the blur, the warp, the way back), not cells.
        sw, sh = cfg.work_width, max(1, round(h * cfg.work_width / w))
        K_small = scale_intrinsics(K, sw / w, sh / h)
        small = cv2.resize(image_bgr, (sw, sh), interpolation=cv2.INTER_AREA)
        skip = None
        if exclude is not None:  # a small pixel is skipped when any of its pixels is
            skip = (cv2.resize((exclude > 0).astype(np.uint8) * 255, (sw, sh), interpolation=cv2.INTER_AREA) > 0)
        mask = self._update(small, K_small, T_map_cam, stamp, None if skip is None else skip.astype(np.uint8))
        return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)

    def _update(self, image_bgr: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray, stamp: float,
                exclude: np.ndarray | None) -> np.ndarray:
        """update() on an image at most work_width wide."""
        cfg = self.config
        h, w = image_bgr.shape[:2]
        out = np.zeros((h, w), np.uint8)
        T = np.asarray(T_map_cam, np.float64)
        centre = T[:3, 3]
        if centre[2] <= 0.05:  # a camera on (or under) the floor sees no floor plane
            return out
        # A pixel at slant distance d spans about d^2 / (f h) of floor along its ray (grazing view).
        reach = min(cfg.max_range_m, float(np.sqrt(cfg.max_footprint_m * K[1, 1] * centre[2])),
                    pose_reach(float(centre[2]), self._tolerance_deg(), cfg.pose_tolerance_m, cfg.max_shift_cells,
                               cfg.cell_m))
        window = self._window(T, K, w, h, reach)
        if window is None:
            return out
        src = image_bgr if cfg.blur_px <= 0 else cv2.GaussianBlur(image_bgr, (0, 0), cfg.blur_px)
        if cfg.align:
            aligned = self._aligned(src, K, T, window)
            if aligned is not T:  # turned: the view covers other floor
                T, window = aligned, self._window(aligned, K, w, h, reach)
                if window is None:
                    return out
        (x0, y0), (rows, cols) = window
        # floor cell (col, row) of the window -> image pixel: H = K [r1 r2 t] A, A: cell -> floor metres
        T_cam_map = invert(T)
        A = np.array([[cfg.cell_m, 0.0, x0 + 0.5 * cfg.cell_m], [0.0, cfg.cell_m, y0 + 0.5 * cfg.cell_m],
                      [0.0, 0.0, 1.0]])
        H_img_cell = K @ T_cam_map[:3][:, [0, 1, 3]] @ A
        # which cells are in view: in front of the camera, inside the image, within range
        jj, ii = np.meshgrid(np.arange(cols), np.arange(rows))
        p = H_img_cell @ np.stack([jj.ravel(), ii.ravel(), np.ones(rows * cols)])
        with np.errstate(divide="ignore", invalid="ignore"):
            u, v = p[0] / p[2], p[1] / p[2]
        fx = x0 + (jj.ravel() + 0.5) * cfg.cell_m
        fy = y0 + (ii.ravel() + 0.5) * cfg.cell_m
        dist = np.sqrt((fx - centre[0]) ** 2 + (fy - centre[1]) ** 2 + centre[2] ** 2)
        inview = (p[2] > 1e-6) & (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1) & (dist <= reach)
        if exclude is not None:
            ui = np.clip(np.nan_to_num(u, nan=0.0, posinf=0.0, neginf=0.0), 0, w - 1).astype(np.int64)
            vi = np.clip(np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0), 0, h - 1).astype(np.int64)
            inview &= exclude[vi, ui] == 0
        inview = inview.reshape(rows, cols)
        if not inview.any():
            return out
        dist = dist.reshape(rows, cols).astype(np.float32)
        seen = cv2.warpPerspective(src, H_img_cell, (cols, rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        if self._t0 is None or float(stamp) < self._last_t - 1.0:
            # first, or the clock went back (a bag played again): no time can be trusted. t0 too: kept from the old
            # clock (1.7e9 s) and the new one starting near 0, _since's float32 stepped 128 s, and settle_s was void
            self._since.fill(np.nan)
            self._t0 = float(stamp)
        elif float(stamp) - self._t0 > _REBASE_S:
            # far ahead of t0 (a long run, or a clock stepped from simulation time to wall time): times from a
            # nearer t0, the cells' "different since" moved with it (long ago stays long ago)
            self._since -= np.float32(float(stamp) - self._t0)
            self._t0 = float(stamp)
        self._last_t = float(stamp)
        changed = self._compare_and_learn(window, seen, dist, inview, float(stamp) - self._t0, float(centre[2]))
        if not changed.any():
            return out
        # back to the image: each pixel whose ray meets the floor takes the verdict of the cell it meets there
        mx, my = self._cell_of_pixel(T, K, w, h, window)
        return cv2.remap(changed.astype(np.uint8) * 255, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)

    def _cell_of_pixel(self, T: np.ndarray, K: np.ndarray, w: int, h: int,
                       window: Window) -> tuple[np.ndarray, np.ndarray]:
        """(h, w) float32 x, y: the window cell each pixel's ray meets the floor in (-1 where it meets none)."""
        cfg = self.config
        (x0, y0), _ = window
        fx, fy = self._floor_points(T, K, w, h)
        mx = ((fx - x0) / cfg.cell_m - 0.5).reshape(h, w).astype(np.float32)
        my = ((fy - y0) / cfg.cell_m - 0.5).reshape(h, w).astype(np.float32)
        mx[~np.isfinite(mx)] = -1.0
        my[~np.isfinite(my)] = -1.0
        return mx, my

    def _floor_points(self, T: np.ndarray, K: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(h * w,) map x, y m where each pixel's ray meets the floor (NaN: it does not); the last two poses'
        are kept (the alignment draws the pose it ends with, and the mask goes back through the same one)."""
        key = (T.tobytes(), K.tobytes(), w, h)
        for cached_key, points in self._points:
            if cached_key == key:
                return points
        centre = T[:3, 3]
        rays = T[:3, :3] @ self._pixel_rays(K, w, h)  # in the map frame
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(rays[2] < -1e-9, -centre[2] / rays[2], np.nan)  # along the ray to z = 0; NaN: no floor
        points = (centre[0] + s * rays[0], centre[1] + s * rays[1])
        self._points = [(key, points), *self._points[:1]]
        return points

    def _aligned(self, image_bgr: np.ndarray, K: np.ndarray, T: np.ndarray, window: Window) -> np.ndarray:
        """T turned so that the memory's floor under the window, drawn into the view, lies where the frame shows
        it (floor_pose.align)."""
        cfg = self.config
        h, w = image_bgr.shape[:2]
        ix = self._index(window)  # read only: views do
        grey_ref = grey(self._ref[ix])
        known_ref = (self._range[ix] > 0).astype(np.float32)

        def drawn(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            mx, my = self._cell_of_pixel(pose, K, w, h, window)
            known = cv2.remap(known_ref, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) > 0.999
            return cv2.remap(grey_ref, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT), known

        return align(grey(image_bgr), K, T, drawn, self._pose_error, max_deg=cfg.max_align_deg,
                     min_known=cfg.align_min_known)

    def _index(self, window: Window) -> tuple[slice, slice] | tuple[np.ndarray, ...]:
        """Where the window's cells lie in the torus: slices (the memory's arrays give views, updated in place)
        for most windows, index arrays (gathered copies, to be written back) for one that wraps around."""
        cfg = self.config
        (x0, y0), (rows, cols) = window
        r0, c0 = int(round(y0 / cfg.cell_m)) % cfg.cells, int(round(x0 / cfg.cell_m)) % cfg.cells
        if r0 + rows <= cfg.cells and c0 + cols <= cfg.cells:
            return slice(r0, r0 + rows), slice(c0, c0 + cols)
        return np.ix_((r0 + np.arange(rows)) % cfg.cells, (c0 + np.arange(cols)) % cfg.cells)

    def _pixel_rays(self, K: np.ndarray, w: int, h: int) -> np.ndarray:
        """(3, h * w) each pixel's ray in the camera frame; kept while the camera's K and size stay the same."""
        key = (K.tobytes(), w, h)
        if self._rays is None or self._rays[0] != key:
            uu, vv = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
            self._rays = (key, np.linalg.solve(K, np.stack([uu.ravel(), vv.ravel(), np.ones(h * w)])))
        return self._rays[1]

    def _window(self, T: np.ndarray, K: np.ndarray, w: int, h: int, reach: float) -> Window | None:
        """((x0, y0) m of the window's corner, (rows, cols)): the box of the floor the image can show within
        reach (m from the camera). Rays through the image's border bound it; one that misses the floor (above
        the horizon) or meets it beyond reach is cut there."""
        cfg, centre = self.config, T[:3, 3]
        flat2 = reach**2 - centre[2] ** 2
        if flat2 <= 0:
            return None
        r = float(np.sqrt(flat2))  # the reach, along the floor
        us, vs = np.linspace(0.0, w - 1.0, 17), np.linspace(0.0, h - 1.0, 13)
        u = np.concatenate([us, us, np.zeros_like(vs), np.full_like(vs, w - 1.0)])
        v = np.concatenate([np.zeros_like(us), np.full_like(us, h - 1.0), vs, vs])
        rays = T[:3, :3] @ np.linalg.solve(K, np.stack([u, v, np.ones_like(u)]))
        flat = np.hypot(rays[0], rays[1])
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(rays[2] < 0, centre[2] * flat / -rays[2], np.inf)  # along the floor to where it meets it
            d = np.minimum(d, r) / np.maximum(flat, 1e-9)
        xs, ys = centre[0] + d * rays[0], centre[1] + d * rays[1]
        margin = 2 * cfg.cell_m
        x0 = np.floor((xs.min() - margin) / cfg.cell_m) * cfg.cell_m
        y0 = np.floor((ys.min() - margin) / cfg.cell_m) * cfg.cell_m
        cols = int(np.ceil((xs.max() + margin - x0) / cfg.cell_m)) + 1
        rows = int(np.ceil((ys.max() + margin - y0) / cfg.cell_m)) + 1
        return (float(x0), float(y0)), (rows, cols)

    def _compare_and_learn(self, window: Window, seen: np.ndarray,
                           dist: np.ndarray, inview: np.ndarray, t: float, height: float) -> np.ndarray:
        """(rows, cols) bool changed cells of the window; updates the memory's cells in view. height: the
        camera's above the floor, m."""
        cfg = self.config
        ix = self._index(window)
        ref, rng, since = self._ref[ix], self._range[ix], self._since[ix]
        known = inview & (rng > 0)
        comparable = known & (dist <= rng * cfg.range_ratio) & (rng <= dist * cfg.range_ratio)
        # One brightness gain for the frame (lights drift, and the camera's exposure), from the cells in view
        # that were seen before; changes are few, so the median ignores them. Saturated cells say nothing.
        unsaturated = seen.max(axis=2) < _SATURATED
        gain = 1.0
        if comparable.sum() > 50:
            a, b = seen[comparable].sum(axis=1), ref[comparable].sum(axis=1)
            ok = (b > 30.0) & unsaturated[comparable]
            if ok.sum() > 50:
                gain = float(np.median(a[ok] / b[ok]))
        gain = gain if _GAIN_RANGE[0] < gain < _GAIN_RANGE[1] else 1.0
        # Compare coarser than a cell: a tag's 3-5 cm modules, seen sharp from near and blurred from afar,
        # would differ everywhere, while a whole board against bare floor still differs. The reference is
        # brought to this frame's light and saturates as the camera does (a white board seen brighter stays
        # 255, it does not become 255 / gain).
        lit = np.minimum(ref * gain, 255.0)
        expected = _smooth(lit, known, cfg.compare_sigma_cells)
        diff = np.linalg.norm(_smooth(seen, inview, cfg.compare_sigma_cells) - expected, axis=2)
        # The smoothing spreads a change past its edge by about its sigma: a cell must differ itself too, by
        # more than the pose's error can make an unchanged edge differ (core.floor_pose).
        shift = shift_cells(dist, height, self._tolerance_deg(), cfg.pose_tolerance_m, cfg.cell_m)
        differs = np.linalg.norm(seen - lit, axis=2) > cfg.threshold + edge_allowance(seen, lit, shift,
                                                                                      cfg.max_shift_cells)
        raw = comparable & (diff > cfg.threshold) & differs
        raw = _drop_small(raw, cfg.min_region_cells)
        if raw.sum() > cfg.max_changed_fraction * max(int(comparable.sum()), 1):
            # Most of the floor in view "changed" at once: a blurred frame (a fast turn), a light the gain
            # did not capture, a bad pose. It is no evidence: nothing is marked and nothing is learned.
            return np.zeros_like(raw)
        agree = comparable & ~raw
        # a cell that looks different starts its clock; one that looks as before stops it
        start = raw & np.isnan(since)
        since[start] = t
        since[agree] = np.nan
        age = t - since  # NaN where unchanged
        changed = raw & (age < cfg.settle_s)
        if self.pose_error_deg > cfg.thin_above_deg:
            changed = _drop_thin(changed, cfg.min_region_width_cells)
        settled = raw & (age >= cfg.settle_s)
        since[settled] = np.nan
        # learn: new cells, settled changes, and drift of agreeing cells; a sharper view replaces a blurred one
        fresh = inview & ((rng <= 0) | settled | (~comparable & (dist < rng)))
        ref[fresh] = seen[fresh] / gain
        rng[fresh] = dist[fresh]
        drift = agree & unsaturated  # a saturated look would pull a white reference down to 255 / gain
        ref[drift] += cfg.blend * (seen[drift] / gain - ref[drift])
        if not isinstance(ix[0], slice):
            self._ref[ix], self._range[ix], self._since[ix] = ref, rng, since
        return changed


def _smooth(look: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """(rows, cols, 3) look blurred over its valid cells only (normalised convolution: cells out of view or
    never seen neither darken nor brighten their neighbours)."""
    if sigma <= 0:
        return look
    w = valid.astype(np.float32)
    num = cv2.GaussianBlur(look * w[:, :, None], (0, 0), sigma)
    den = cv2.GaussianBlur(w, (0, 0), sigma)
    return num / np.maximum(den, 1e-3)[:, :, None]


def _drop_thin(mask: np.ndarray, min_width: float) -> np.ndarray:
    """The mask without the connected regions (8-connected) that are nowhere min_width cells across: no cell of
    theirs lies min_width / 2 cells or more inside (distance to the nearest cell outside, cv2's 3x3 L2 estimate,
    which puts the middle of a 3-cell-wide strip at 1.9, a 2-cell-wide one's at 0.96)."""
    if min_width <= 0 or not mask.any():
        return mask
    m = mask.astype(np.uint8)
    n, labels = cv2.connectedComponents(m, connectivity=8)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    deepest = np.zeros(n, np.float32)
    np.maximum.at(deepest, labels[mask], inside[mask])  # the marked cells only: they are few, the window is not
    keep = deepest >= 0.5 * min_width
    keep[0] = False
    return keep[labels]


def _drop_small(mask: np.ndarray, min_cells: int) -> np.ndarray:
    """The mask without connected regions (8-connected) of fewer than min_cells cells."""
    if min_cells <= 1 or not mask.any():
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_cells
    keep[0] = False
    return keep[labels]
