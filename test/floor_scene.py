"""A floor seen through a pinhole camera, for the floor memory's tests: a smooth random texture warped into
the image, with or without a board (a white square with a black centre) lying on it."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

W, H = 320, 240
K = np.array([[200.0, 0.0, W / 2], [0.0, 200.0, H / 2], [0.0, 0.0, 1.0]])
RES = 0.01  # texture m per px
SIZE_M = 12.0
BOARD = (6.0, 5.0, 0.4)  # centre x, y and edge, m


def texture(board: bool, seed: int = 0, lines: bool = False) -> np.ndarray:
    """lines: also paint sharp yellow lines 5 cm wide (lane markings: edges a pose error moves)."""
    rng = np.random.default_rng(seed)
    n = int(SIZE_M / RES)
    tex = cv2.GaussianBlur(rng.uniform(60, 200, (n // 20, n // 20, 3)).astype(np.float32), (0, 0), 1.5)
    tex = cv2.resize(tex, (n, n), interpolation=cv2.INTER_CUBIC)
    if lines:
        for y in (4.0, 5.8):  # along the patrol, either side of the board
            tex[int(y / RES):int((y + 0.05) / RES)] = (0.0, 210.0, 230.0)
        for x in np.arange(1.5, 11.0, 1.5):  # across it
            tex[:, int(x / RES):int((x + 0.05) / RES)] = (0.0, 210.0, 230.0)
    if board:
        tex[board_rows_cols()] = 240.0
        x, y, e = BOARD
        inner = (slice(int((y - e / 4) / RES), int((y + e / 4) / RES)),
                 slice(int((x - e / 4) / RES), int((x + e / 4) / RES)))
        tex[inner] = 20.0
    return tex


def board_rows_cols() -> tuple[slice, slice]:
    x, y, e = BOARD
    return slice(int((y - e / 2) / RES), int((y + e / 2) / RES)), slice(int((x - e / 2) / RES), int((x + e / 2) / RES))


def pose(x: float, y: float, height: float = 1.5, pitch_deg: float = 60.0) -> np.ndarray:
    """Camera at (x, y, height) looking along map +x, pitched down; optical frame (z forward, y down)."""
    p = np.radians(pitch_deg)
    forward = np.array([np.cos(p), 0.0, -np.sin(p)])
    right = np.array([0.0, -1.0, 0.0])
    down = np.cross(forward, right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, down, forward], axis=1)
    T[:3, 3] = (x, y, height)
    return T


def render(tex: np.ndarray, T: np.ndarray, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    T_cam_map = np.linalg.inv(T)
    H_img_tex = K @ T_cam_map[:3][:, [0, 1, 3]] @ np.diag([RES, RES, 1.0])
    img = cv2.warpPerspective(tex, H_img_tex, (W, H), flags=cv2.INTER_LINEAR, borderValue=(128, 128, 128))
    img = img * gain + rng.normal(0.0, 2.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def board_pixels(T: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels showing the board's place."""
    mark = np.zeros((int(SIZE_M / RES),) * 2, np.uint8)
    mark[board_rows_cols()] = 255
    H_img_tex = K @ np.linalg.inv(T)[:3][:, [0, 1, 3]] @ np.diag([RES, RES, 1.0])
    return cv2.warpPerspective(mark, H_img_tex, (W, H), flags=cv2.INTER_NEAREST) > 0


def patrol(step: Callable[[np.ndarray, np.ndarray, float], np.ndarray], tex: np.ndarray, t0: float,
           rng: np.random.Generator, gain: float = 1.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Drive along y = 5 from x = 1 to 7 at 1 m/s, 10 frames/s, calling step(image, T_map_cam, stamp) -> mask:
    [(mask > 0, the board's pixels)] per frame."""
    out = []
    for k, x in enumerate(np.arange(1.0, 7.0, 0.1)):
        T = pose(x, 5.0)
        mask = step(render(tex, T, rng, gain), T, t0 + 0.1 * k)
        out.append((mask > 0, board_pixels(T)))
    return out
