"""Train model.tag_reader's CellNet on quads from training scenes (`spatial-memory train-tag-reader`).

Data: the benchmark's own scene views (same resolution, tag and board sizes) on training seeds only. Every
quad the tag finder returns on every `every`-th frame is warped to a crop and labelled from the scene's
truth: the tag id of the one item whose projected board holds the quad's centre, or "no tag" when no item
does (quads on two items are dropped). Decoded tags' own quads are kept as positives too. Cells are learned
with a loss that takes the best of the 8 corner orders, so a crop needs no upright label. Scenes are split
by seed: the last `val_scenes` seeds are held out to report how the reader trades reads for mistakes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..core.errors import BadInputError
from ..core.tags import TagDetector, to_gray
from .checkpoint import atomic_save
from .config import TRAIN_SEED_MIN
from .tag_reader import CELLS, CROP_PX, CellNet, TagReader, best_two, cell_variants, normalise, tag_cells, warp_quad

logger = logging.getLogger(__name__)

# (preset, camera) of each training scene, cycled over the seeds: patrol twice as often (it is what smears
# tags), and the last two of each cycle are patrol scenes, so that the held-back seeds are too.
SCENE_KINDS = (("warehouse", "static"), ("home", "static"), ("warehouse", "patrol"), ("home", "patrol"),
               ("warehouse", "patrol"), ("home", "patrol"))
STATIC_EVERY = 5  # a static camera sees the same quads frame after frame: sample it this much more sparsely
# A quad whose bounding box is less than this share of its item's projected board box shows only part of the
# tag (an inner contour): labelled "no tag", since no reader could name it. Tag-border quads are 0.25-0.44
# of the board (tag / board edge 0.5-0.67), board quads about 1.
MIN_QUAD_SHARE = 0.15


@dataclass
class Quads:
    crops: np.ndarray  # (N, S, S) uint8
    tag_ids: np.ndarray  # (N,) int, -1 = no item there
    seeds: np.ndarray  # (N,) int, the scene each came from
    decoded: np.ndarray  # (N,) bool, the finder decoded this quad itself


def collect(kind: tuple[str, str], seed: int, minutes: float, every: int = 2, progress: bool = True) -> Quads:
    """Every finder quad of one training scene (see the module docstring for the labels)."""
    from ..bench.scene import make_bench_scene
    from ..bench.stream import sim_frames

    if seed < TRAIN_SEED_MIN:
        raise BadInputError(f"seed {seed} is not a training seed (>= {TRAIN_SEED_MIN})")
    scene = make_bench_scene(kind[0], kind[1], minutes, seed, width=320, height=240)
    finder = TagDetector(scene.tag_config().tag_size_m)
    crops: list[np.ndarray] = []
    ids: list[int] = []
    decoded: list[bool] = []
    step = every * (STATIC_EVERY if kind[1] == "static" else 1)
    for f in tqdm(sim_frames(scene, jobs=2), total=len(scene), desc=f"quads {kind[0]}/{kind[1]} {seed}",
                  unit="frame", disable=not progress, mininterval=2.0):
        if f.index % step:
            continue
        gray = to_gray(f.image)
        tags, rejected = finder.detect_with_rejected(gray)
        items = [it for it in f.truth.items.values() if it.box is not None and it.visible_px >= 50]
        for quad, was_decoded in [(t.corners, True) for t in tags] + [(q, False) for q in rejected]:
            cx, cy = quad.mean(axis=0)
            inside = [it for it in items if it.box[0] <= cx <= it.box[2] and it.box[1] <= cy <= it.box[3]]
            if len(inside) > 1:
                continue
            crops.append(warp_quad(gray, quad))
            ids.append(inside[0].tag_id if inside and _share(quad, inside[0].box) >= MIN_QUAD_SHARE else -1)
            decoded.append(was_decoded)
    n = len(crops)
    return Quads(np.stack(crops) if n else np.zeros((0, CROP_PX, CROP_PX), np.uint8), np.array(ids, int),
                 np.full(n, seed, int), np.array(decoded, bool))


def _share(quad: np.ndarray, box: np.ndarray) -> float:
    """The quad's bounding-box area over box's (4,)."""
    w, h = quad.max(axis=0) - quad.min(axis=0)
    return float(w * h / max((box[2] - box[0]) * (box[3] - box[1]), 1.0))


def concat(parts: Sequence[Quads]) -> Quads:
    return Quads(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("crops", "tag_ids", "seeds", "decoded")))


def _targets(tag_ids: np.ndarray) -> torch.Tensor:
    """(N, 8, 36) cell targets in every corner order (zeros for "no tag": their cells are not scored)."""
    out = np.zeros((len(tag_ids), 8, CELLS * CELLS), np.float32)
    for t in np.unique(tag_ids[tag_ids >= 0]):
        out[tag_ids == t] = cell_variants(tag_cells(int(t))).reshape(8, -1)
    return torch.from_numpy(out)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor, is_tag: torch.Tensor) -> torch.Tensor:
    """Cells: BCE of the best-fitting corner order, on tag crops only; plus BCE of "is a tag"."""
    cells = logits[:, None, :-1].expand_as(targets)
    per_order = F.binary_cross_entropy_with_logits(cells, targets, reduction="none").mean(dim=2)  # (N, 8)
    cell_loss = (per_order.amin(dim=1) * is_tag).sum() / is_tag.sum().clamp(min=1.0)
    return cell_loss + F.binary_cross_entropy_with_logits(logits[:, -1], is_tag)


def _augment(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random gain, offset and noise on normalised crops; corner-order changes come free from the loss."""
    n = len(x)
    gain = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=rng)
    offset = 0.3 * (torch.rand(n, 1, 1, 1, generator=rng) - 0.5)
    noise = 0.08 * torch.randn(x.shape, generator=rng)
    k = int(torch.randint(4, (1,), generator=rng))
    return torch.rot90(x * gain + offset + noise, k, dims=(2, 3)).clamp(-1.5, 1.5)


def train(data: Quads, *, epochs: int = 8, width: int = 16, batch: int = 256, lr: float = 2e-3,
          seed: int = 0, progress: bool = True) -> CellNet:
    """A CellNet fitted to data (rotating a crop rotates its cells: the min-over-orders loss absorbs it)."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    net = CellNet(width)
    x = normalise(data.crops)
    targets = _targets(data.tag_ids)
    is_tag = torch.from_numpy((data.tag_ids >= 0).astype(np.float32))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    bar = tqdm(total=steps, desc="train tag reader", unit="step", disable=not progress, mininterval=2.0)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=rng).split(batch):
            loss = loss_fn(net(_augment(x[idx], rng)), targets[idx], is_tag[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    net.eval()
    return net


def save(net: CellNet, path: Path) -> None:
    """Write the weights; atomically, since the default path is the package's shipped reader: a run killed while
    saving must leave the old file whole."""
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    state["width"] = torch.tensor(net.width)
    atomic_save(state, path)


def read_rates(reader: TagReader, data: Quads, margins: Sequence[float]) -> list[dict[str, float]]:
    """On data the net never saw, per margin (the reader's other thresholds as set): undecoded item quads read
    right and wrong; non-item quads read as an item (false reads); and item quads read as an item when their
    own id is not configured (an unknown tag in view). The reader knows the ids present in data."""
    ll, ceiling, p_tag = reader.scores(data.crops)
    ids = np.array(reader.ids)
    item = (data.tag_ids >= 0) & ~data.decoded
    guess, margin, top = best_two(ll)
    _, margin_unknown, top_unknown = best_two(np.where(data.tag_ids[:, None] == ids[None, :], -np.inf, ll))
    rows = []
    for m in margins:
        ok = reader.accept(margin, ceiling - top, p_tag, min_margin=m)
        ok_unknown = reader.accept(margin_unknown, ceiling - top_unknown, p_tag, min_margin=m)
        rows.append({
            "margin": float(m),
            "item_quads": int(item.sum()),
            "read_right": int((ok & item & (ids[guess] == data.tag_ids)).sum()),
            "read_wrong": int((ok & item & (ids[guess] != data.tag_ids)).sum()),
            "other_quads": int((data.tag_ids < 0).sum()),
            "false_reads": int((ok & (data.tag_ids < 0)).sum()),
            "unknown_read": int((ok_unknown & item).sum()),
        })
    return rows


def run(out: Path, seeds: Sequence[int], *, minutes: float = 10.0, val_scenes: int = 2, epochs: int = 8,
        progress: bool = True) -> dict:
    """Collect, train on all but the last val_scenes seeds, report on those, save the weights to out."""
    if val_scenes < 1 or epochs < 1 or not 0 < minutes < math.inf:
        raise BadInputError(f"--val-scenes and --epochs must be >= 1 and --minutes > 0 and finite, got {val_scenes}, "
                            f"{epochs} and {minutes}")
    if len(seeds) <= val_scenes:
        raise BadInputError(f"need more than {val_scenes} seeds, got {list(seeds)}")
    start = time.monotonic()
    parts = [collect(SCENE_KINDS[i % len(SCENE_KINDS)], s, minutes, progress=progress) for i, s in enumerate(seeds)]
    train_set, val_set = concat(parts[:-val_scenes]), concat(parts[-val_scenes:])
    for name, part in (("training", train_set), ("validation", val_set)):
        if not (part.tag_ids >= 0).any():  # too few frames: training had failed inside torch with a traceback
            raise BadInputError(f"the {name} scenes gave {len(part.crops)} quads, none on a tag: nothing to learn "
                                f"or check; give more --minutes (got {minutes:g}) or other seeds")
    net = train(train_set, epochs=epochs, progress=progress)
    save(net, out)
    reader = TagReader(sorted({int(t) for t in val_set.tag_ids if t >= 0}), out)
    rates = read_rates(reader, val_set, (4.0, 8.0, 12.0, 16.0, 24.0))
    return {"weights": str(out), "seeds": list(seeds), "val_seeds": list(seeds[-val_scenes:]),
            "train_quads": len(train_set.crops), "val_quads": len(val_set.crops), "val": rates,
            "wall_s": time.monotonic() - start}
