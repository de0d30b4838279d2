"""The classical change baseline: background reference, frame difference, no learning.

Everything works on a slightly blurred grey image, after fitting a global gain and offset between the
two images being compared, so that a light being switched on or off is not a change. Optionally
(ChangeConfig.colour_angle_deg) a pixel whose colour turned by more than an angle in RGB space is a
change too: a yellow box on a white cloth, or an orange forklift on a grey floor, differs from the
background by only 15-30 grey levels but by 20-35 degrees of hue. The angle between two colour vectors
does not change when a light scales them (the chromaticity distortion of Horprasert, Harwood and Davis,
"A statistical approach for real-time robust background subtraction and shadow detection", 1999).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .change_compare import (
    at_size,
    channel_sum,
    colour_turned,
    full_size,
    photometric_residual,
    prepare,
    prepare_colour,
)
from .config import ChangeConfig
from .errors import BadInputError
from .geometry import pose_delta, same_intrinsics, scale_intrinsics
from .turn_canvas import TurnCanvas, reprojected
from .turning import (
    TurnLimits,
    image_shift,
    is_blurred_step,
    is_turn,
    misfit,
    off_canvas,
    rotation_for_shift,
    view_from_canvas,
    wh,
)
from .turning import warp as warp_view
from .types import CameraIntrinsics

_BACKGROUND_RATE = 0.05  # per-frame blend of unchanged pixels into the reference (slow light drift)
_OPEN_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))  # drops isolated noisy pixels
_CLOSE_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))  # joins the edges of a moving blob


@dataclass(frozen=True)
class ChangeOutput:
    """What changed in one frame."""

    mask: np.ndarray  # (H, W) uint8, 255 = differs from the learned background, 0 = unchanged
    motion_boxes: list[np.ndarray]  # each (4,) x1, y1, x2, y2 px (x2/y2 exclusive): moving blobs
    # the reference was reset this frame; mask and motion_boxes are empty. Only the classical detector resets: the
    # learned backend's mask comes from its network on every frame (its still background restarts quietly)
    camera_moved: bool
    # (len(motion_boxes), E) unit-length appearance of each blob, from a backend that has one (the learned
    # model's re-identification head); None = no appearance (the classical baseline)
    motion_appearance: np.ndarray | None = None
    # (4,) px box of the part in view of each motion box, from a backend that grows boxes past it (the
    # learned model completes agents cut by the image border): 3D lifting reads depth and the floor contact
    # there. None = the motion boxes show only what is in view (the classical baseline)
    motion_seen_boxes: list[np.ndarray] | None = None


class ChangeDetector:
    """Background-difference change mask and frame-difference motion blobs, for a STATIC camera.

    The detector keeps a reference image of the scene. A pixel is changed when it differs from the
    reference by more than ``threshold`` grey levels, after the global brightness of the frame is
    matched to the reference (gain and offset fitted on the pixels that agree). A changed pixel that
    then stays put for ``stable_frames`` frames is absorbed into the reference: an object put down
    becomes background after a while, and so does the hole a removed object leaves. Unchanged pixels
    follow slow lighting drift. Motion blobs are connected regions that differ from the previous
    frame, joined with the changed regions they touch (so a uniform object is one blob, not its two
    edges); those of at least ``min_blob_area_px`` pixels are returned as boxes.

    When the camera moves, the mask means nothing: every pixel differs from a reference taken from
    another viewpoint. So when the camera pose (if given) has moved more than
    ``pose_reset_translation_m`` / ``pose_reset_rotation_deg`` from where the reference was taken, or
    when more than ``motion_reset_fraction`` of the pixels change at once (a move without a pose, or a
    scene cut), the reference is reset to the current frame and the output is an all-zero mask, no
    motion boxes and ``camera_moved=True``. From then on the detector reports changes relative to the
    new view: it cannot tell what changed while the camera was moving. Without a pose, a pan across
    plain walls may change too few pixels to be noticed and show up as a large change instead, so
    give the pose when there is one. A change of image size resets the detector the same way. The
    first frame only sets the reference: empty mask, ``camera_moved=False``.

    With ``follow_turns`` (and the pose and intrinsics given), a camera that only turns (core.turning) keeps its
    reference: it moves onto a canvas in the plane of the view where it was taken, the canvas is re-projected
    into each new view to be compared, and each frame onto the canvas to be learned; what the camera had not
    shown is taken as unchanged (compared with itself) until it has been. A frame that turned too fast since the
    last is blurred: it is neither compared nor learned (an empty mask, ``camera_moved=False``: the reference
    stays for the next frame).
    """

    def __init__(self, config: ChangeConfig) -> None:
        self.config = config
        self.reset()

    def describe(self) -> str:
        """What the node's startup log calls this backend."""
        return "classical"

    def reset(self) -> None:
        """Forget the reference; the next frame becomes the new one."""
        self._reference: np.ndarray | None = None  # (H, W) float32, blurred grey
        self._previous: np.ndarray | None = None  # (H, W) float32, blurred grey
        self._stable_count: np.ndarray | None = None  # (H, W) int32 frames changed and still
        self._reference_pose: np.ndarray | None = None  # (4, 4) T_map_cam when the reference was taken
        self._reference_colour: np.ndarray | None = None  # (H, W, 3) float32 blurred BGR (colour_angle_deg > 0)
        self._previous_colour: np.ndarray | None = None  # (H, W, 3) float32 blurred BGR
        self._previous_pose: np.ndarray | None = None  # the last frame's pose (follow_turns)
        self._previous_seen_pose: np.ndarray | None = None  # _previous's: older after a blurred frame (follow_turns)
        self._canvas: TurnCanvas | None = None  # the reference while following a turn
        self._reference_K: np.ndarray | None = None  # the last intrinsics given: a zoom restarts the reference

    def update(
        self, image_bgr: np.ndarray, T_map_cam: np.ndarray | None = None, intrinsics: CameraIntrinsics | None = None,
        stamp: float | None = None,
    ) -> ChangeOutput:
        """One frame: (H, W, 3) BGR or (H, W) grey uint8; T_map_cam (4, 4) if the camera pose is known.
        stamp (s) is not used: this detector counts frames (the ChangeBackend protocol offers it).
        intrinsics are needed only to follow a turn (config.follow_turns); without them a turn restarts it."""
        gray = prepare(image_bgr)
        colour = prepare_colour(image_bgr) if self.config.colour_angle_deg > 0 else None
        pose = _checked_pose(T_map_cam)
        K = None if intrinsics is None else intrinsics.K
        zoomed = K is not None and self._reference_K is not None and not same_intrinsics(K, self._reference_K)
        if K is not None:
            self._reference_K = K
        if (self._reference is None or self._reference.shape != gray.shape or zoomed
                or (colour is None) != (self._reference_colour is None)):
            size_changed = self._reference is not None
            self._restart(gray, pose, colour)  # a new size or a zoom: the reference shows another view
            return self._empty(gray.shape, camera_moved=size_changed)
        last_pose, self._previous_pose = self._previous_pose, pose
        if self.config.follow_turns and pose is not None and intrinsics is not None:
            following = self._canvas is not None
            ref_pose = self._canvas.pose if self._canvas is not None else self._reference_pose
            if is_turn(_TURNS, ref_pose, pose, following=following):
                if is_blurred_step(_TURNS, last_pose, pose):  # this frame is unfit to compare: the reference waits
                    return self._empty(gray.shape, camera_moved=False)
                return self._follow(gray, colour, pose, intrinsics)
            if following:  # moved, or turned too far: as any move past the limits
                self._restart(gray, pose, colour)
                return self._empty(gray.shape, camera_moved=True)
        elif self._canvas is not None:  # the pose or the intrinsics went away mid-turn: the reference is elsewhere
            self._restart(gray, pose, colour)
            return self._empty(gray.shape, camera_moved=True)
        if pose is not None and self._reference_pose is not None:
            moved_m, turned_deg = pose_delta(self._reference_pose, pose)
            if (
                moved_m > self.config.pose_reset_translation_m
                or turned_deg > self.config.pose_reset_rotation_deg
            ):
                self._restart(gray, pose, colour)
                return self._empty(gray.shape, camera_moved=True)
        elif pose is not None:
            self._reference_pose = pose  # the pose arrived after the reference: adopt it
        assert self._previous is not None and self._stable_count is not None

        changed, moving, gain, offset = self._differs(gray, colour, self._reference, self._previous,
                                                      self._reference_colour, self._previous_colour)
        if max(changed.mean(), moving.mean()) > self.config.motion_reset_fraction:
            self._restart(gray, pose, colour)
            return self._empty(gray.shape, camera_moved=True)

        # Current values expressed in the reference's brightness, so absorbed and blended pixels
        # stay consistent with the rest of the reference.
        in_reference_light = (gray - np.float32(offset)) / np.float32(gain)
        self._stable_count = (self._stable_count + 1) * (changed & ~moving)  # resets where not still
        absorb = self._stable_count >= self.config.stable_frames
        np.copyto(self._reference, in_reference_light, where=absorb)
        self._stable_count[absorb] = 0
        unchanged = (~changed).astype(np.uint8)
        cv2.accumulateWeighted(in_reference_light, self._reference, _BACKGROUND_RATE, mask=unchanged)
        self._previous, self._previous_seen_pose = gray, pose
        if colour is not None:  # the angle ignores brightness, so the colour reference takes pixels as they are
            assert self._reference_colour is not None
            small = wh(colour)  # (w, h) of the colour copy
            absorb_c = at_size(absorb.astype(np.uint8), small) > 0
            np.copyto(self._reference_colour, colour, where=absorb_c[..., None])
            cv2.accumulateWeighted(colour, self._reference_colour, _BACKGROUND_RATE, mask=at_size(unchanged, small))
            self._previous_colour = colour
        return self._output(changed, moving, absorb)

    def _differs(
        self, gray: np.ndarray, colour: np.ndarray | None, reference: np.ndarray, previous: np.ndarray,
        reference_colour: np.ndarray | None, previous_colour: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, float, float]:
        """(changed: differs from the reference, moving: from the previous frame, both (H, W) bool; the fitted
        gain and offset of the frame against the reference), in grey levels and, with a colour copy, by colour."""
        thr = self.config.threshold
        residual, gain, offset = photometric_residual(gray, reference, thr)
        changed = residual > thr
        moving = photometric_residual(gray, previous, thr)[0] > thr
        if colour is not None:
            assert reference_colour is not None and previous_colour is not None
            cos_max = float(np.cos(np.radians(self.config.colour_angle_deg)))
            norm2 = channel_sum(cv2.multiply(colour, colour))  # |current|^2, for both comparisons
            changed |= full_size(colour_turned(colour, norm2, reference_colour, cos_max), gray.shape)
            moving |= full_size(colour_turned(colour, norm2, previous_colour, cos_max), gray.shape)
        return changed, moving, gain, offset

    def _output(self, changed: np.ndarray, moving: np.ndarray, absorb: np.ndarray) -> ChangeOutput:
        """The mask (what changed, less what was absorbed this frame: background from now on) and motion boxes."""
        changed &= ~absorb
        mask = cv2.morphologyEx(changed.astype(np.uint8) * 255, cv2.MORPH_OPEN, _OPEN_KERNEL)
        return ChangeOutput(mask=mask, motion_boxes=self._motion_boxes(moving, mask), camera_moved=False)

    def _motion_boxes(self, moving: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
        """Boxes of connected moving regions of at least min_blob_area_px pixels, largest first.

        moving: (H, W) bool, differs from the previous frame; mask: (H, W) uint8 change mask.
        """
        # Frame differencing only lights up the leading and trailing edges of a uniform object, which
        # split into two blobs once it is wider than the closing kernel. The change mask holds the
        # whole object where it is now, so a changed region that touches motion is added to it.
        n, labels = cv2.connectedComponents(mask, connectivity=8)
        touched = np.zeros(n, dtype=bool)
        touched[labels[cv2.dilate(moving.astype(np.uint8), _OPEN_KERNEL) > 0]] = True
        touched[0] = False  # label 0 is the unchanged background
        region = moving | touched[labels]
        blobs = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_CLOSE, _CLOSE_KERNEL)
        n, _labels, stats, _centroids = cv2.connectedComponentsWithStats(blobs, connectivity=8)
        boxes = []
        for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1:  # label 0 is the background
            x, y, w, h, area = stats[i]
            if area >= self.config.min_blob_area_px:
                boxes.append(np.array([x, y, x + w, y + h], dtype=np.float64))
        return boxes

    def _follow(self, gray: np.ndarray, colour: np.ndarray | None, pose: np.ndarray,
                intrinsics: CameraIntrinsics) -> ChangeOutput:
        """update() for a camera that turns (follow_turns): the same tests against the canvas's reference
        re-projected into this view, and the frame's updates written back onto the canvas."""
        assert self._reference is not None and self._previous is not None and self._stable_count is not None
        h, w = gray.shape
        K = intrinsics.K
        intrinsics.check_size(w, h)
        if self._canvas is None:  # the first frame of a turn: the reference goes onto a canvas
            assert self._reference_pose is not None
            self._canvas = TurnCanvas(self._reference, self._stable_count, self._reference_colour,
                                      self._reference_pose, _BACKGROUND_RATE)
        c = self._canvas
        raw, pose = pose, pose @ c.pose_fix
        view = view_from_canvas(K, c.pose, pose, c.offset)
        if off_canvas(view, (w, h), c.reference.shape):  # turned past the canvas: a new reference, as a move
            self._restart(gray, raw, colour)
            return self._empty(gray.shape, camera_moved=True)
        reference, known = c.view_of(c.reference, c.known, view, gray)
        # A pose a little off (a localisation's jitter or jump; the camera itself still) would misalign the
        # reference by as much: the picture says by how much, and the pose is turned to agree with it. The fix
        # stays until the picture says otherwise (a localisation error lasts; an unsure frame says nothing), and
        # in all it stays within the turn the plain code tolerates without a warp (pose_reset_rotation_deg).
        # A fix is kept only if most of the picture then agrees better (a large mover can pull the shift's peak).
        max_px = K[0, 0] * np.tan(np.radians(self.config.pose_reset_rotation_deg))
        dx, dy = image_shift(reference, gray, known, max_px)
        if np.hypot(dx, dy) >= _ALIGN_MIN_PX:
            fix = c.pose_fix @ rotation_for_shift(dx, dy, K)
            if pose_delta(np.eye(4), fix)[1] <= self.config.pose_reset_rotation_deg:
                fixed_view = view_from_canvas(K, c.pose, raw @ fix, c.offset)
                fixed, fixed_known = c.view_of(c.reference, c.known, fixed_view, gray)
                if misfit(fixed, gray, fixed_known) < misfit(reference, gray, known):
                    c.pose_fix, pose, view, reference, known = fix, raw @ fix, fixed_view, fixed, fixed_known
        stable = warp_view(c.stable.astype(np.int16), view, (w, h), nearest=True).astype(np.int32) * known
        # the last frame compared, re-projected into this one (a fresh frame each time: nothing accumulates)
        seen = self._previous_seen_pose if self._previous_seen_pose is not None else pose
        from_last = K @ pose[:3, :3].T @ seen[:3, :3] @ np.linalg.inv(K)
        previous = reprojected(self._previous, from_last, gray)
        colour_view = ref_colour = prev_colour = None
        if colour is not None:
            assert c.colour is not None and c.colour_known is not None and self._previous_colour is not None
            K_c = scale_intrinsics(K, colour.shape[1] / w, colour.shape[0] / h)
            colour_view = view_from_canvas(K_c, c.pose, pose, c.colour_offset)
            ref_colour, _ = c.view_of(c.colour, c.colour_known, colour_view, colour)
            prev_colour = reprojected(self._previous_colour, K_c @ np.linalg.inv(K) @ from_last @ K @
                                       np.linalg.inv(K_c), colour)
        changed, moving, gain, offset = self._differs(gray, colour, reference, previous, ref_colour, prev_colour)
        if max(changed.mean(), moving.mean()) > self.config.motion_reset_fraction:
            self._restart(gray, pose, colour)
            return self._empty(gray.shape, camera_moved=True)
        stable = (stable + 1) * (changed & ~moving)
        absorb = stable >= self.config.stable_frames
        stable[absorb] = 0
        in_reference_light = (gray - np.float32(offset)) / np.float32(gain)
        c.learn(in_reference_light, absorb, ~changed, stable, np.linalg.inv(view))
        if colour is not None and colour_view is not None:
            small = wh(colour)
            c.learn_colour(colour, at_size(absorb.astype(np.uint8), small) > 0,
                           at_size((~changed).astype(np.uint8), small) > 0, np.linalg.inv(colour_view))
        self._previous, self._previous_colour, self._previous_seen_pose = gray, colour, pose
        if c.stood(raw) >= _SETTLE_FRAMES:  # it stands again: back to the plain code, cheaper (one resample)
            self._reference, known = c.view_of(c.reference, c.known, view, in_reference_light)
            self._stable_count = warp_view(c.stable.astype(np.int16), view, (w, h), nearest=True).astype(np.int32)
            self._stable_count *= known
            if colour is not None and colour_view is not None:
                assert c.colour is not None and c.colour_known is not None
                self._reference_colour = c.view_of(c.colour, c.colour_known, colour_view, colour)[0]
            self._reference_pose, self._canvas = raw, None  # the raw pose: what later frames' poses are compared with
        return self._output(changed, moving, absorb)

    def _restart(self, gray: np.ndarray, pose: np.ndarray | None, colour: np.ndarray | None = None) -> None:
        self._canvas = None
        self._previous_pose = self._previous_seen_pose = pose
        self._reference = gray.copy()
        self._previous = gray
        self._stable_count = np.zeros(gray.shape, dtype=np.int32)
        self._reference_pose = pose
        self._reference_colour = colour.copy() if colour is not None else None
        self._previous_colour = colour

    @staticmethod
    def _empty(shape: tuple[int, ...], camera_moved: bool) -> ChangeOutput:
        return ChangeOutput(mask=np.zeros(shape, dtype=np.uint8), motion_boxes=[], camera_moved=camera_moved)


_TURNS = TurnLimits()
# a shift of the picture against the re-projected reference smaller than this (px) is left alone: people walking
# through the view move image_shift's peak by up to 0.4 px (PETS09), and a pose that is right needs no help
_ALIGN_MIN_PX = 1.0
# frames a followed camera must stand (within TurnLimits.exact_deg of where it stopped) before its reference leaves
# the canvas for the plain code: a pan-tilt head parked after a pan costs no more than one that never turned (about
# 9 ms a 640 x 480 frame less). Leaving drops what the canvas knew outside the view: at 10 frames it left at the
# ends of PETS09's +-8 deg pan (`evaluate pets09 --pan-deg 8`: 95.0 % of the people found, 619 false px a frame,
# against 95.7 % and 518 never leaving), so only a camera parked for 5 s at 10 Hz leaves
_SETTLE_FRAMES = 50


def _checked_pose(T: np.ndarray | None) -> np.ndarray | None:
    if T is None:
        return None
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise BadInputError(f"T_map_cam must be a finite (4, 4) matrix, got shape {T.shape}")
    return T
