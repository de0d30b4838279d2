"""AprilTag 36h11 detection and pose, on OpenCV's aruco module (no extra native library).

The tag frame follows OpenCV's convention: origin at the tag centre, x to the tag's right, y up the
tag, z out of the tag towards a camera that sees it. ViSP and the AprilTag C library rotate x and y
by 180 degrees about z; positions agree, orientations differ by that fixed rotation.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .errors import BadInputError
from .types import CameraIntrinsics, TagDetection

_DICTIONARY_ID = cv2.aruco.DICT_APRILTAG_36h11
_NUM_TAGS = 587  # ids 0..586 exist in the 36h11 family
_CELLS = 8  # 6x6 data bits + one black border cell on each side
# CORNER_REFINE_APRILTAG is a port of the AprilTag library's edge refinement, which puts pixel centres at
# (0.5, 0.5) (AprilRobotics/apriltag#121); intrinsics and everything else here put them at (0, 0).
# Measured on exact synthetic renders: corners come out +0.45..0.5 px in x and y without this shift.
_APRILTAG_PIXEL_CENTRE = 0.5
_WINDOW_MARGIN = 0.5  # refinement window: the tag's box grown by half its size on each side ...
_MIN_WINDOW_MARGIN_PX = 10.0  # ... but by at least this
_FINDER_MAX_WINDOW_PX = 13  # the fast finder's largest adaptive-threshold window (see TagDetector)


def _dictionary() -> cv2.aruco.Dictionary:
    return cv2.aruco.getPredefinedDictionary(_DICTIONARY_ID)


def render_tag(tag_id: int, size_px: int) -> np.ndarray:
    """The canonical image of one 36h11 tag: (size_px, size_px) uint8, 0 = black, 255 = white.

    The image is the black border square itself, edge to edge; put it on a white background (a quiet
    zone of at least one cell, size_px / 8) or the detector cannot find the border. A size that is a
    multiple of 8 gives cells of equal width.
    """
    if not 0 <= int(tag_id) < _NUM_TAGS:
        raise BadInputError(f"tag_id {tag_id} is not in the 36h11 family (0..{_NUM_TAGS - 1})")
    if int(size_px) < _CELLS:
        raise BadInputError(f"size_px must be >= {_CELLS} (one pixel per cell), got {size_px}")
    return cv2.aruco.generateImageMarker(_dictionary(), int(tag_id), int(size_px), borderBits=1)


def tag_object_points(tag_size_m: float) -> np.ndarray:
    """(4, 3) corners in the tag frame, m, in the order SOLVEPNP_IPPE_SQUARE requires.

    That order is also aruco's corner order (tl, tr, br, bl of the upright tag image), so detected
    corners pair with these rows directly.
    """
    h = tag_size_m / 2.0
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]], dtype=np.float64)


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) BGR uint8 -> (H, W) uint8; anything else raises BadInputError."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise BadInputError(
            f"image must be a uint8 numpy array, got {getattr(image, 'dtype', type(image).__name__)}"
        )
    if image.ndim not in (2, 3) or 0 in image.shape:
        raise BadInputError(f"image must be a non-empty (H, W) or (H, W, 3) array, got shape {image.shape}")
    if image.ndim == 2:
        gray = image
    elif image.ndim == 3 and image.shape[2] == 3:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    else:
        raise BadInputError(f"image must be (H, W) grey or (H, W, 3) BGR, got shape {image.shape}")
    return gray


class TagDetector:
    """Finds AprilTag 36h11 tags and, given intrinsics, their pose in the camera frame.

    tag_size_m is the edge of the black border square; a wrong value scales every tag distance by the
    same factor, so it must match the printed tags.
    """

    def __init__(self, tag_size_m: float) -> None:
        if not tag_size_m > 0:
            raise BadInputError(f"tag_size_m must be > 0, got {tag_size_m}")
        self.tag_size_m = float(tag_size_m)
        if not hasattr(cv2.aruco, "ArucoDetector"):  # Debian/Ubuntu python3-opencv 4.6 has the old API only
            raise BadInputError(
                f"OpenCV {cv2.__version__} lacks cv2.aruco.ArucoDetector (needs >= 4.7): "
                "pip install 'opencv-python-headless>=4.8' (see README)"
            )
        # CORNER_REFINE_APRILTAG fits the border edges and gives the most accurate corners, which
        # matter more to the pose than anything else; but it runs AprilTag's whole quad detector over
        # the image (~125 ms for 640x480 on 2 cores, against ~12 ms for aruco's contour detector). So
        # the fast detector finds the tags and the AprilTag one runs only in a window around each:
        # the same corners (< 0.05 px apart on the synthetic scenes) and about the same recall.
        fast = cv2.aruco.DetectorParameters()
        fast.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX  # kept if the window finds nothing
        # Threshold windows of 3 and 13 px instead of 3, 13 and 23: each window is a full adaptive
        # threshold and contour search; the third cost a quarter of the finder's wall time and a third of
        # its CPU (16 -> 12 ms, 22 -> 15 ms CPU per 640x480 frame, 2 cores) and found 1 more of 450 tags
        # on 150 noisy, blurred, tilted renders 0.6-7 m away.
        fast.adaptiveThreshWinSizeMax = _FINDER_MAX_WINDOW_PX
        self._finder = cv2.aruco.ArucoDetector(_dictionary(), fast)
        precise = cv2.aruco.DetectorParameters()
        precise.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_APRILTAG
        self._refiner = cv2.aruco.ArucoDetector(_dictionary(), precise)
        self._object_points = tag_object_points(self.tag_size_m)  # (4, 3)

    def detect(self, image: np.ndarray, intrinsics: CameraIntrinsics | None = None) -> list[TagDetection]:
        """Tags in an (H, W) grey or (H, W, 3) BGR uint8 image, sorted by tag id.

        Without intrinsics the detections carry corners only (T_cam_tag None, error nan).
        """
        return self.detect_with_rejected(image, intrinsics)[0]

    def detect_with_rejected(
        self, image: np.ndarray, intrinsics: CameraIntrinsics | None = None
    ) -> tuple[list[TagDetection], list[np.ndarray]]:
        """detect(), plus the (4, 2) px quads the finder found but could not decode (model.tag_reader's input)."""
        gray = to_gray(image)
        corners, ids, rejected = self._finder.detectMarkers(gray)
        quads = [np.asarray(q, dtype=np.float64).reshape(4, 2) for q in rejected]
        if ids is None or len(ids) == 0:
            return [], quads
        out = []
        for tag_corners, tag_id in zip(corners, ids.reshape(-1)):
            rough = np.asarray(tag_corners, dtype=np.float64).reshape(4, 2)  # (4, 2) px
            c = self._refine(gray, int(tag_id), rough)
            T, err = self._pose(c, intrinsics) if intrinsics is not None else (None, float("nan"))
            out.append(TagDetection(tag_id=int(tag_id), corners=c, T_cam_tag=T, reprojection_error_px=err))
        out.sort(key=lambda d: d.tag_id)
        return out, quads

    def _refine(self, gray: np.ndarray, tag_id: int, rough: np.ndarray) -> np.ndarray:
        """(4, 2) AprilTag-refined corners of one tag, from a window around its rough corners (4, 2)."""
        h, w = gray.shape
        lo, hi = rough.min(axis=0), rough.max(axis=0)
        # The window must hold the quiet zone (one cell, 1/8 of the tag) for the border to be found.
        margin = max(_WINDOW_MARGIN * float((hi - lo).max()), _MIN_WINDOW_MARGIN_PX)
        x1, y1 = max(int(lo[0] - margin), 0), max(int(lo[1] - margin), 0)
        x2, y2 = min(int(hi[0] + margin) + 1, w), min(int(hi[1] + margin) + 1, h)
        corners, ids, _ = self._refiner.detectMarkers(np.ascontiguousarray(gray[y1:y2, x1:x2]))
        best = None
        for c, i in zip(corners, ids.reshape(-1) if ids is not None else []):
            if int(i) != tag_id:
                continue
            offset = np.array([x1, y1], dtype=np.float64) - _APRILTAG_PIXEL_CENTRE  # window -> image
            c = np.asarray(c, dtype=np.float64).reshape(4, 2) + offset
            if best is None or np.abs(c - rough).sum() < np.abs(best - rough).sum():
                best = c  # a neighbour with the same id in the window is another tag: take the closer
        return rough if best is None else best

    def _pose(self, corners: np.ndarray, intrinsics: CameraIntrinsics) -> tuple[np.ndarray | None, float]:
        """T_cam_tag (4, 4) and mean corner reprojection error (px); (None, nan) if PnP fails."""
        try:
            return self._solve(corners, intrinsics)
        except cv2.error:  # OpenCV asserts on some inputs (K of 1e12, an infinite tag size): this tag has no pose
            return None, float("nan")

    def _solve(self, corners: np.ndarray, intrinsics: CameraIntrinsics) -> tuple[np.ndarray | None, float]:
        """_pose(), which may raise cv2.error. Every frame that showed a tag was dropped as a bug before."""
        K, dist = intrinsics.K, intrinsics.dist_coeffs
        obj = self._object_points
        n, rvecs, tvecs, _ = cv2.solvePnPGeneric(obj, corners, K, dist, flags=cv2.SOLVEPNP_IPPE_SQUARE)
        candidates = [self._scored(r, t, corners, K, dist) for r, t in zip(rvecs[:n], tvecs[:n])]
        # IPPE is poorly conditioned near fronto-parallel: for an exactly square image it returns the
        # identity rotation, and a few degrees off it misses its own corners by a pixel or more
        # (OpenCV 5.0, seen on synthetic renders). SQPnP has no such case; the best of all is polished.
        ok, r, t = cv2.solvePnP(obj, corners, K, dist, flags=cv2.SOLVEPNP_SQPNP)
        if ok:
            candidates.append(self._scored(r, t, corners, K, dist))
        # IPPE returns NaN poses for some thin quads (a 30 x 15 px one at the image edge, seen on the home
        # patrol); min() would keep a NaN that comes first, so such candidates are dropped here.
        candidates = [c for c in candidates if math.isfinite(c[0])]
        if not candidates:
            return None, float("nan")
        err, rvec, tvec = min(candidates, key=lambda c: c[0])
        r, t = cv2.solvePnPRefineLM(obj, corners, K, dist, rvec.copy(), tvec.copy())
        polished = self._scored(r, t, corners, K, dist)
        if polished[0] < err:  # False for a NaN polish: the unpolished pose stands
            err, rvec, tvec = polished
        T = np.eye(4)
        T[:3, :3], _ = cv2.Rodrigues(rvec)
        T[:3, 3] = tvec.reshape(3)
        if not np.isfinite(T).all():
            return None, float("nan")
        return T, err

    def _scored(
        self, rvec: np.ndarray, tvec: np.ndarray, corners: np.ndarray, K: np.ndarray, dist: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        projected, _ = cv2.projectPoints(self._object_points, rvec, tvec, K, dist)
        return float(np.linalg.norm(projected.reshape(4, 2) - corners, axis=1).mean()), rvec, tvec
