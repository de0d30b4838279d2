"""Training streams cut from real photographs: a still camera over a photo, photo-textured shapes that move.

The simulator's renders are all the network ever saw, and it learned their look: on real footage (a hand
moving a thermos in opencv-doc's cup.mp4) it marks next to nothing, even after fine-tunes that recolour the
simulator's agents (BENCHMARKS "What the network keys on", "An edge weight against the halo"). These streams
give it real textures, real noise and real edges, where nothing but change tells what moved: the background
is a crop of one photograph, and what moves are shapes cut from others. Some are arms that reach in from an
image border, sometimes to pick up an item (a shape pasted on the background from the start) and put it
down elsewhere; others cross the view as blobs. The light drifts and sometimes jumps, which is never change.

Change truth follows the simulator's rule (sim/scene.py): a pixel is changed if a mover covers it, or if what
lies there differs from the place's reference, which takes the new content once it has been in view for the
settle time. So a vacated place and a put-down item are changed for that long, then become the scene.

The photographs are Debian's opencv-doc examples (installed by ``scripts/setup_venv.sh --data``); the clips
the package is judged on (cup.mp4, box.mp4, vtest.avi) are not among the files read: only still images.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..sim.camera import look_at
from .config import ModelConfig

PHOTO_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
MIN_PHOTO_PX = (160, 120)  # smaller images (icons, digits) make poor backgrounds and textures
ARM_SHARE = 0.6  # movers that are arms from a border (the rest cross the view as blobs)
CARRY_SHARE = 0.6  # arms that pick up an item and put it down elsewhere


@functools.lru_cache(maxsize=4)
def photo_files(directory: str) -> tuple[Path, ...]:
    """The still images in `directory` (jpg, png), sorted so a seed draws the same ones on any machine."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} not found: photo training streams need Debian's opencv-doc (scripts/setup_venv.sh --data)")
    files = tuple(sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")))
    if len(files) < 2:
        raise FileNotFoundError(f"{root} holds fewer than two images: photo streams need a background and a texture")
    return files


def _photo(files: tuple[Path, ...], rng: np.random.Generator) -> np.ndarray:
    """A colour image of at least MIN_PHOTO_PX drawn from files (draws again past unreadable or small ones)."""
    for _ in range(50):
        img = cv2.imread(str(files[int(rng.integers(len(files)))]), cv2.IMREAD_COLOR)
        if img is not None and img.shape[1] >= MIN_PHOTO_PX[0] and img.shape[0] >= MIN_PHOTO_PX[1]:
            return img
    raise ValueError("no readable photo of at least 160 x 120 px among the files")


def _crop(img: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random crop of img with the aspect of size (w, h), at least half its side, resized to size, colour
    scaled a little, flipped half the time: (h, w, 3) float32."""
    w, h = size
    H, W = img.shape[:2]
    scale = rng.uniform(0.5, 1.0) * min(W / w, H / h)
    cw, ch = max(int(w * scale), 8), max(int(h * scale), 8)
    x, y = int(rng.integers(W - cw + 1)), int(rng.integers(H - ch + 1))
    out = cv2.resize(img[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out * rng.uniform(0.75, 1.25, 3).astype(np.float32))


def _blob(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) float32 alpha of a random convex-ish shape: an ellipse or a polygon, edges anti-aliased."""
    alpha = np.zeros((size, size), np.uint8)
    c = size / 2
    if rng.random() < 0.5:
        axes = (int(c * rng.uniform(0.5, 0.95)), int(c * rng.uniform(0.3, 0.95)))
        cv2.ellipse(alpha, (int(c), int(c)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
    else:
        n = int(rng.integers(4, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = c * rng.uniform(0.5, 0.95, n)
        pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], axis=1).astype(np.int32)
        cv2.fillPoly(alpha, [pts], 255, cv2.LINE_AA)
    return alpha.astype(np.float32) / 255.0


@dataclass
class _Sprite:
    """A photo-textured shape: texture (s, s, 3) float32, alpha (s, s) float32."""

    texture: np.ndarray
    alpha: np.ndarray

    @property
    def size(self) -> int:
        return self.alpha.shape[0]


def _paste(canvas: np.ndarray, cover: np.ndarray, sprite: _Sprite, centre: np.ndarray) -> None:
    """Alpha-blend sprite into canvas (H, W, 3) centred at centre (x, y); cover (H, W) float32 takes the alpha."""
    H, W = cover.shape
    s = sprite.size
    x0, y0 = int(round(centre[0])) - s // 2, int(round(centre[1])) - s // 2
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + s, W), min(y0 + s, H)
    if ax0 >= ax1 or ay0 >= ay1:
        return
    a = sprite.alpha[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0, None]
    region = canvas[ay0:ay1, ax0:ax1]
    region[:] = region * (1 - a) + sprite.texture[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0] * a
    cover[ay0:ay1, ax0:ax1] = np.maximum(cover[ay0:ay1, ax0:ax1], a[..., 0])


def _path(keys: list[tuple[int, np.ndarray]], frames: int) -> np.ndarray:
    """(frames, 2) float positions interpolated between keyframes (frame, xy); NaN outside the keys."""
    out = np.full((frames, 2), np.nan)
    t = np.arange(frames)
    ts = np.array([k for k, _ in keys], float)
    inside = (t >= ts[0]) & (t <= ts[-1])
    for d in range(2):
        out[inside, d] = np.interp(t[inside], ts, [p[d] for _, p in keys])
    return out


def _border_point(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A point just outside a random image border (x, y)."""
    w, h = size
    side = int(rng.integers(4))
    u = rng.uniform(0.1, 0.9)
    return np.array([(u * w, -10.0), (u * w, h + 10.0), (-10.0, u * h), (w + 10.0, u * h)][side])


@dataclass
class _Mover:
    """An arm (anchor on a border, a textured band to the tip) or a blob sprite moving along `path`."""

    path: np.ndarray  # (frames, 2) tip / centre, NaN while out of the picture
    sprite: _Sprite  # a blob's shape, or an arm's hand
    arm_texture: np.ndarray | None = None  # (H, W, 3) an arm's texture (slides with the tip)
    anchor: np.ndarray | None = None  # an arm's point on the border
    width: int = 0  # an arm's thickness, px
    carries: int = -1  # index of the item it carries
    carry: tuple[int, int] = (0, 0)  # frames it picks the item up and puts it down


@dataclass(frozen=True)
class PhotoScene:
    """A rendered photo stream at render size (before the model's downscale)."""

    images: np.ndarray  # (L, H, W, 3) uint8
    masks: np.ndarray  # (L, H, W) bool: changed
    agents: np.ndarray  # (L, H, W) bool: a mover covers it (a carried item included)
    instances: np.ndarray  # (L, H, W) int32: mover i + 1, item j -> ITEM_BASE + j, 0 = background
    T_map_cam: np.ndarray  # (4, 4)
    K: np.ndarray  # (3, 3)


ITEM_BASE = 1000  # instance of item j in PhotoScene.instances (movers are 1..n)


def render_photo_scene(seed: int, frames: int, size: tuple[int, int], settle_frames: int,
                       directory: str | Path | None = None) -> PhotoScene:
    """Draw and render one photo stream of `frames` frames at size (w, h) from the images in directory
    (None: PHOTO_DIR)."""
    files = photo_files(str(directory or PHOTO_DIR))
    rng = np.random.default_rng([seed, 81])
    w, h = size
    background = _crop(_photo(files, rng), size, rng)
    # items: shapes lying on the background from the start (part of the reference until moved)
    items = [_Sprite(_crop(_photo(files, rng), (s, s), rng), _blob(s, rng))
             for s in (int(h * rng.uniform(0.15, 0.35)) for _ in range(int(rng.integers(1, 4))))]
    item_pos = [np.array([rng.uniform(0.15, 0.85) * w, rng.uniform(0.2, 0.85) * h]) for _ in items]
    movers = [_draw_mover(files, rng, size, frames, items, item_pos) for _ in range(int(rng.integers(1, 4)))]
    # light: a slow drift, sometimes a jump (a lamp), and sensor noise; none of it is change
    gain = 1.0 + 0.06 * np.sin(np.linspace(0, rng.uniform(0.5, 3.0), frames) + rng.uniform(0, 6.3))
    if rng.random() < 0.3:
        gain[int(rng.integers(frames // 4, frames)) :] *= rng.uniform(0.7, 1.3)
    noise = rng.uniform(1.0, 4.0)

    reference = np.zeros((h, w), np.int32)  # content each place remembers, from frame 0: 0 bare, else a placement id
    pending = np.full((h, w), -1, np.int32)  # frame the differing content was first seen, -1 none
    images = np.empty((frames, h, w, 3), np.uint8)
    masks = np.empty((frames, h, w), bool)
    agents = np.empty((frames, h, w), bool)
    instances = np.empty((frames, h, w), np.int32)
    placed = [p.copy() for p in item_pos]
    for t in range(frames):
        canvas = background.copy()
        content = np.zeros((h, w), np.int32)
        inst = np.zeros((h, w), np.int32)
        carried = {m.carries for m in movers if m.carries >= 0 and m.carry[0] <= t < m.carry[1]}
        for m in movers:
            if m.carries >= 0 and t == m.carry[1]:
                placed[m.carries] = m.path[t - 1].copy()
        for j, sprite in enumerate(items):
            if j in carried:
                continue
            cover = np.zeros((h, w), np.float32)
            _paste(canvas, cover, sprite, placed[j])
            # a put-down item is a new placement: its id differs from the one it had where it lay before
            placed_id = 1 + j + len(items) * sum(1 for m in movers if m.carries == j and t >= m.carry[1])
            content[cover > 0.5] = placed_id
            inst[cover > 0.5] = ITEM_BASE + j
        if t == 0:
            reference = content.copy()
        mover_cover = np.zeros((h, w), np.float32)
        for i, m in enumerate(movers):
            before = mover_cover.copy()
            _draw(canvas, mover_cover, m, t, items)
            inst[(mover_cover > 0.5) & (before <= 0.5)] = i + 1
        moving = mover_cover > 0.5
        visible = ~moving
        differs = visible & (content != reference)
        pending[differs & (pending < 0)] = t
        pending[visible & ~differs] = -1
        settled = differs & (t - pending >= settle_frames) & (pending < t)
        reference[settled], pending[settled] = content[settled], -1
        masks[t] = moving | (differs & ~settled)
        agents[t] = moving
        instances[t] = inst
        frame = canvas * gain[t] + rng.normal(0.0, noise, canvas.shape).astype(np.float32)
        images[t] = np.clip(frame, 0, 255).astype(np.uint8)
    height, ahead = rng.uniform(1.0, 3.0), rng.uniform(1.5, 3.5)
    T = look_at(np.array([0.0, 0.0, height]), np.array([ahead, 0.0, 0.0]))
    f = w / (2 * math.tan(math.radians(rng.uniform(55.0, 75.0)) / 2))
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)
    return PhotoScene(images, masks, agents, instances, T, K)


def _draw_mover(files: tuple[Path, ...], rng: np.random.Generator, size: tuple[int, int], frames: int,
                items: list[_Sprite], item_pos: list[np.ndarray]) -> _Mover:
    """One mover with its timeline inside the stream: enters after a few frames, acts, and leaves."""
    w, h = size
    speed = rng.uniform(0.01, 0.04) * w  # px per frame
    start = int(rng.integers(5, max(frames // 2, 6)))
    entry = _border_point(size, rng)
    stops = [np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h]) for _ in range(int(rng.integers(1, 3)))]
    arm = rng.random() < ARM_SHARE
    carries = -1
    if arm and items and rng.random() < CARRY_SHARE:
        carries = int(rng.integers(len(items)))
        stops = [item_pos[carries], stops[0]]
    leave = entry if arm else _border_point(size, rng)
    keys, t, here = [(start, entry)], float(start), entry
    pick = drop = 0
    for k, p in enumerate([*stops, leave]):
        t += float(np.linalg.norm(p - here)) / speed
        keys.append((int(t), p))
        if k < len(stops):  # a pause where it stops
            t += rng.uniform(3, 15)
            keys.append((int(t), p))
            if carries >= 0:
                if k == 0:
                    pick = int(t)
                else:
                    drop = int(t)
        here = p
    path = _path(keys, frames)  # a drop at or past the last frame never comes: the item is carried to the end
    # The hand is drawn from rng for every mover, a blob too (which does not use it): dropping the draw would
    # shift every later one, and with it every training stream the shipped still head learned from.
    hand = int(h * rng.uniform(0.15, 0.35))  # cup.mp4's hand is about a quarter of the height
    sprite = _Sprite(_crop(_photo(files, rng), (hand, hand), rng), _blob(hand, rng))
    if not arm:
        big = int(h * rng.uniform(0.2, 0.45))
        return _Mover(path, _Sprite(_crop(_photo(files, rng), (big, big), rng), _blob(big, rng)))
    texture = _crop(_photo(files, rng), (2 * w, 2 * h), rng)
    return _Mover(path, sprite, texture, entry, int(hand * rng.uniform(0.6, 1.0)), carries,
                  (pick, drop) if carries >= 0 else (0, 0))


def _draw(canvas: np.ndarray, cover: np.ndarray, m: _Mover, t: int, items: list[_Sprite]) -> None:
    """Paint mover m at frame t (nothing while its path is NaN); its carried item rides on the tip."""
    tip = m.path[t]
    if np.isnan(tip[0]):
        return
    if m.arm_texture is not None and m.anchor is not None:
        h, w = cover.shape
        band = np.zeros((h, w), np.uint8)
        cv2.line(band, tuple(int(v) for v in m.anchor), tuple(int(v) for v in tip), 255, m.width, cv2.LINE_AA)
        a = band.astype(np.float32)[..., None] / 255.0
        ox = int(np.clip(w / 2 - (tip[0] - m.anchor[0]) / 2, 0, w))  # the texture slides with the arm
        oy = int(np.clip(h / 2 - (tip[1] - m.anchor[1]) / 2, 0, h))
        texture = m.arm_texture[oy : oy + h, ox : ox + w]
        canvas[:] = canvas * (1 - a) + texture * a
        np.maximum(cover, a[..., 0], out=cover)
    _paste(canvas, cover, m.sprite, tip)
    if m.carries >= 0 and m.carry[0] <= t < m.carry[1]:
        _paste(canvas, cover, items[m.carries], tip)


def photo_training_size(config: ModelConfig) -> tuple[int, int]:
    """Render size of a photo stream: twice the model's input, shrunk with INTER_AREA as camera images are."""
    return 2 * config.image_width, 2 * config.image_height
