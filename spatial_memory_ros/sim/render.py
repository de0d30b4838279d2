"""Rasterise one frame: floor by homography, item boards by their own homography, agents as flat polygons.

Everything the renderer draws is either in the floor plane (exact: a plane maps to the image by a
homography) or a vertical agent (approximated by the filled hull of its projected 3D vertices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..core.geometry import project_points
from ..core.types import CameraIntrinsics
from .camera import NEAR_M, floor_depth, floor_homography, project_hull
from .floor import FloorGrid, board_corners, render_board, render_floor
from .script import AgentTrack, SceneScript

NOISE_BANK = 4  # pre-drawn noise fields; each frame takes a random one at a random offset
NOISE_PAD = 16


@dataclass(frozen=True)
class AgentDraw:
    """One agent as drawn into a frame."""

    track: AgentTrack
    position: np.ndarray  # (3,) m, footprint centre on the floor
    velocity: np.ndarray  # (3,) m/s
    box: np.ndarray | None  # (4,) px, hull box clipped to the image; None when out of view


class Renderer:
    """Scene-constant resources (floor texture, boards, noise) and the per-frame drawing steps."""

    def __init__(self, script: SceneScript, intrinsics: CameraIntrinsics, seed: int) -> None:
        preset = script.preset
        self.script, self.intr, self.K = script, intrinsics, intrinsics.K
        self.size = (intrinsics.width, intrinsics.height)
        self.grid = FloorGrid(preset.floor)
        self.texture = render_floor(preset.floor, self.grid, np.random.default_rng([seed, 1]))
        boards = [render_board(it) for it in preset.items]
        self.patches = [b for b, _ in boards]
        self.edges_m = [e for _, e in boards]
        self.corners = [board_corners(p.pose, self.edges_m[p.item]) for p in script.placements]
        self._noise_rng = np.random.default_rng([seed, 2])
        self._noise: list[np.ndarray] = []
        self._key: tuple | None = None
        self._layer: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def static_layer(self, T_map_cam: np.ndarray, placements: tuple[int, ...]) -> tuple:
        """(image (H, W, 3) uint8, floor depth (H, W) float32, H_img_tex (3, 3)), fresh copies.

        Cached on (pose, placements): a static camera warps the floor only when an item moves.
        """
        key = (T_map_cam.tobytes(), placements)
        if key != self._key:
            floor = self.script.preset.floor
            H_img_map = floor_homography(self.K, T_map_cam)
            H_img_tex = H_img_map @ self.grid.A_map_tex
            img = cv2.warpPerspective(
                self.texture,
                H_img_tex,
                self.size,
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=floor.outside_color,
            )
            depth = floor_depth(self.intr, T_map_cam)
            img[np.isnan(depth)] = floor.wall_color
            for p in placements:
                self._draw_board(
                    img, H_img_map, self.corners[p], self.patches[self.script.placements[p].item]
                )
            self._key, self._layer = key, (img, depth, H_img_tex)
        assert self._layer is not None
        img, depth, H = self._layer
        return img.copy(), depth.copy(), H

    def _draw_board(
        self, img: np.ndarray, H_img_map: np.ndarray, corners: np.ndarray, patch: np.ndarray
    ) -> None:
        p = np.column_stack([corners, np.ones(4)]) @ H_img_map.T
        if np.any(p[:, 2] < NEAR_M):  # (part of) the board is behind the camera: never in view then
            return
        uv = p[:, :2] / p[:, 2:3]
        h, w = img.shape[:2]
        x0, y0 = np.maximum(np.floor(uv.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(uv.max(axis=0)).astype(int) + 1, (w, h))
        if x1 <= x0 or y1 <= y0:
            return
        n = patch.shape[0] - 0.5
        src = np.array([[-0.5, -0.5], [n, -0.5], [n, n], [-0.5, n]], np.float32)
        Hp = cv2.getPerspectiveTransform(src, (uv - (x0, y0)).astype(np.float32))
        roi = img[y0:y1, x0:x1].copy()
        cv2.warpPerspective(
            patch,
            Hp,
            (int(x1 - x0), int(y1 - y0)),
            dst=roi,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_TRANSPARENT,
        )
        img[y0:y1, x0:x1] = roi

    def draw_agents(
        self, img: np.ndarray, depth: np.ndarray, T_map_cam: np.ndarray, t: float
    ) -> tuple[np.ndarray, list[AgentDraw]]:
        """Paint the agents active at t far to near; returns the instance mask (H, W) uint16 and them."""
        h, w = img.shape[:2]
        inst = np.zeros((h, w), np.uint16)
        drawn: list[tuple[float, AgentDraw, np.ndarray | None, np.ndarray | None]] = []
        for track in self.script.active_agents(t):
            xy, yaw, vel = track.state(t)
            verts = _agent_vertices(track, xy, yaw)
            spec = track.spec
            hull = project_hull(self.K, T_map_cam, verts)
            box = None
            if hull is not None:
                lo, hi = np.maximum(hull.min(axis=0), 0), np.minimum(hull.max(axis=0), (w, h))
                box = np.array([lo[0], lo[1], hi[0], hi[1]]) if np.all(hi > lo) else None
            _, zc = project_points(self.K, T_map_cam, np.array([[xy[0], xy[1], spec.size[2] / 2]]))
            top = verts[len(verts) // 2 :]
            _, zt = project_points(self.K, T_map_cam, top)
            above = T_map_cam[2, 3] > spec.size[2]  # the top face only shows to a camera above it
            top_uv = project_hull(self.K, T_map_cam, top) if above and np.all(zt > NEAR_M) else None
            pos, v3 = np.array([xy[0], xy[1], 0.0]), np.array([vel[0], vel[1], 0.0])
            drawn.append(
                (float(zc[0]), AgentDraw(track, pos, v3, box), hull if box is not None else None, top_uv)
            )
        drawn.sort(key=lambda d: -d[0])
        for z, agent, hull, top_uv in drawn:
            if hull is None:
                continue
            pts = [np.round(hull * 16).astype(np.int32)]
            color = agent.track.spec.color
            cv2.fillPoly(img, pts, color, cv2.LINE_8, 4)
            cv2.fillPoly(inst, pts, agent.track.agent_id, cv2.LINE_8, 4)
            cv2.fillPoly(depth, pts, max(z, NEAR_M), cv2.LINE_8, 4)
            if top_uv is not None:  # a lighter top face, so the solid reads as 3D
                light = tuple(min(255, int(c * 1.3) + 20) for c in color)
                cv2.fillPoly(img, [np.round(top_uv * 16).astype(np.int32)], light, cv2.LINE_8, 4)
        return inst, [d[1] for d in drawn]

    def degrade(self, img: np.ndarray, gain: float, blur_px: np.ndarray, rng: np.random.Generator) -> None:
        """In place: illumination gain, motion blur (box along x/y), sensor noise."""
        n = self.script.preset.nuisance
        if abs(gain - 1.0) > 1e-3:
            cv2.convertScaleAbs(img, dst=img, alpha=gain)
        kx, ky = (min(n.max_blur_px, int(round(abs(float(b))))) for b in blur_px)
        if max(kx, ky) > 1:  # a box kernel: O(1) per pixel whatever the length, unlike a line kernel
            cv2.blur(img, (max(kx, 1), max(ky, 1)), dst=img)
        if n.noise_sigma > 0:
            h, w = img.shape[:2]
            if not self._noise:
                shape = (h + NOISE_PAD, w + NOISE_PAD, 3)
                self._noise = [
                    np.round(n.noise_sigma * self._noise_rng.standard_normal(shape, np.float32)).astype(
                        np.int16
                    )
                    for _ in range(NOISE_BANK)
                ]
            k, dy, dx = rng.integers(NOISE_BANK), rng.integers(NOISE_PAD), rng.integers(NOISE_PAD)
            cv2.add(img, self._noise[k][dy : dy + h, dx : dx + w], dst=img, dtype=cv2.CV_8U)


def _agent_vertices(track: AgentTrack, xy: np.ndarray, yaw: float) -> np.ndarray:
    """(2N, 3): bottom ring then top ring of the agent's prism."""
    spec = track.spec
    if spec.shape == "cylinder":
        a = np.linspace(0, 2 * math.pi, 12, endpoint=False)
        ring = spec.size[0] * np.column_stack([np.cos(a), np.sin(a)])
    else:  # "box" (build_script accepts no other shape)
        hl, hw = spec.size[0] / 2, spec.size[1] / 2
        c, s = math.cos(yaw), math.sin(yaw)
        ring = np.array([[hl, hw], [-hl, hw], [-hl, -hw], [hl, -hw]]) @ np.array([[c, s], [-s, c]])
    ring = ring + xy
    n = len(ring)
    return np.column_stack([np.vstack([ring, ring]), np.r_[np.zeros(n), np.full(n, spec.size[2])]])
