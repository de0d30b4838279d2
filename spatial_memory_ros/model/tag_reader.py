"""A learned reader for the tags the AprilTag decoder gives up on: blurred, small, or framed by their board.

The tag finder (core.tags) rejects many quads that are items: a patrolling camera smears the cells, a far
tag's cells are 2 px wide, and often the quad it found is the white board around the tag rather than the
tag's border. Each rejected quad is warped to a CROP_PX square; a small CNN predicts the 6x6 data cells of
the tag it shows (whatever its scale in the crop) and how likely the crop is a tag at all. The prediction
is matched against the ids of the configured items only, under the 8 ways a quad's corners can be ordered:
a handful of known ids, far apart in Hamming distance, can be told apart from cells that a full 587-id
decode could not trust. A read is accepted only when the best id beats the runner-up by min_margin nats.

The net learns cells, not ids, so it reads any configured id set; it is trained on quads from training
scenes only (tag_reader_train). Torch-only, ROS-free; one instance per pipeline, not thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ..core.errors import BadInputError
from .checkpoint import MISFIT_ERRORS, read_torch_file, short_reason

CROP_PX = 32  # a warped quad: 8 cells (border included) of 4 px when the quad is the tag's border
CELLS = 6  # 36h11: 6x6 data cells inside a one-cell black border
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "tag_reader.pt"
# The quad's corners go to the crop's outer pixel edges (pixel centres are integers), so that rotating a crop
# by 90 deg is exactly the crop of the same quad with its corners rolled by one: training rotates crops.
_DST = np.array([[0, 0], [CROP_PX, 0], [CROP_PX, CROP_PX], [0, CROP_PX]], np.float32) - 0.5
_EPS = 1e-4


def tag_cells(tag_id: int) -> np.ndarray:
    """(6, 6) float32, 1 = white data cell of 36h11 tag tag_id, in the dictionary's upright orientation."""
    d = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    img = d.generateImageMarker(int(tag_id), CELLS + 2)
    return (img[1:-1, 1:-1] > 127).astype(np.float32)


def cell_variants(cells: np.ndarray) -> np.ndarray:
    """(8, 6, 6): the 4 rotations of cells and of its mirror (a quad's corner order may run either way)."""
    return np.stack([np.rot90(f, k) for f in (cells, cells[:, ::-1]) for k in range(4)])


def warp_quad(gray: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """(CROP_PX, CROP_PX) uint8: the quad (4, 2) px warped to a square, corners in the order given."""
    H = cv2.getPerspectiveTransform(np.asarray(quad, np.float32).reshape(4, 2), _DST)
    return cv2.warpPerspective(gray, H, (CROP_PX, CROP_PX), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def normalise(crops: np.ndarray) -> torch.Tensor:
    """(N, 1, S, S) float: each crop's 5th-95th percentile stretched to [-1, 1] (lighting varies per scene)."""
    x = crops.astype(np.float32).reshape(len(crops), -1)
    lo, hi = np.percentile(x, 5, axis=1, keepdims=True), np.percentile(x, 95, axis=1, keepdims=True)
    x = np.clip((x - lo) / np.maximum(hi - lo, 8.0), 0.0, 1.0) * 2.0 - 1.0
    return torch.from_numpy(x.reshape(len(crops), 1, CROP_PX, CROP_PX).astype(np.float32))  # float32 on numpy 1 too


class CellNet(nn.Module):
    """(N, 1, 32, 32) crops -> (N, 37) logits: 36 data cells (white = 1) and "is a tag"."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.features = nn.Sequential(
            block(1, width), block(width, width), nn.MaxPool2d(2),  # 16
            block(width, 2 * width), block(2 * width, 2 * width), nn.MaxPool2d(2),  # 8
            block(2 * width, 2 * width),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 64, 256), nn.ReLU(inplace=True),
                                  nn.Linear(256, CELLS * CELLS + 1))
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass(frozen=True)
class TagRead:
    """One quad read as a configured tag."""

    tag_id: int
    quad: np.ndarray  # (4, 2) px
    margin: float  # nats: log-likelihood of the best id over the runner-up
    misfit: float  # nats: how far the best id's cells fall short of the net's own likeliest cells
    p_tag: float  # the net's probability that the quad is a tag at all


class TagReader:
    """Reads rejected quads as one of known_ids, or not at all.

    Args:
        known_ids: the tag ids that name items here; nothing else is ever read.
        weights: a state dict saved by tag_reader_train (its "width" entry sizes the net).
        min_margin: nats the best id's log-likelihood must beat the runner-up's by.
        max_misfit: nats the best id's cells may fall short of the likeliest cells the net sees: a tag that is
            not configured is closest to some known id, but 11 or more cells away from all of them.
        min_p_tag: the least probability that the quad is a tag.
        The defaults were chosen on held-back training scenes (tag_reader_train reports the trade-off).
    """

    def __init__(self, known_ids: list[int], weights: Path = DEFAULT_WEIGHTS, *, min_margin: float = 12.0,
                 max_misfit: float = 8.0, min_p_tag: float = 0.5) -> None:
        state = read_torch_file(weights, "tag reader's weights")
        try:
            self.net = CellNet(int(state.pop("width")))
            self.net.load_state_dict(state)
        except MISFIT_ERRORS as e:
            raise BadInputError(f"{weights} is not a tag reader's weights (train-tag-reader writes them): "
                                f"{short_reason(e)}") from e
        self.net.eval()
        self.ids = sorted({int(i) for i in known_ids})
        # (K * 8, 36): every known id in every corner order
        self._refs = torch.from_numpy(
            np.concatenate([cell_variants(tag_cells(i)).reshape(8, -1) for i in self.ids]) if self.ids
            else np.zeros((0, CELLS * CELLS), np.float32)
        )
        self.min_margin = float(min_margin)
        self.max_misfit = float(max_misfit)
        self.min_p_tag = float(min_p_tag)

    @torch.no_grad()
    def scores(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For (N, S, S) crops: (N, K) log-likelihood of each known id (its best corner order), (N,) that of the
        net's own likeliest cells (the most any id could score), and (N,) P(tag)."""
        logits = self.net(normalise(crops))
        p = torch.sigmoid(logits[:, :-1]).clamp(_EPS, 1 - _EPS)
        ll = torch.log(p) @ self._refs.T + torch.log1p(-p) @ (1 - self._refs).T  # (N, K*8)
        per_id = ll.reshape(len(crops), len(self.ids), 8).amax(dim=2)
        ceiling = torch.log(torch.maximum(p, 1 - p)).sum(dim=1)
        return per_id.numpy(), ceiling.numpy(), torch.sigmoid(logits[:, -1]).numpy()

    def accept(self, margin: np.ndarray, misfit: np.ndarray, p_tag: np.ndarray, *,
               min_margin: float | None = None) -> np.ndarray:
        """(N,) bool: which reads pass the three thresholds (min_margin: another margin than the reader's)."""
        m = self.min_margin if min_margin is None else min_margin
        return (margin >= m) & (misfit <= self.max_misfit) & (p_tag >= self.min_p_tag)

    def read(self, gray: np.ndarray, quads: list[np.ndarray]) -> list[TagRead]:
        """The quads (each (4, 2) px in gray) read as a known id with enough margin; at most one per id."""
        if not quads or not self.ids:
            return []
        crops = np.stack([warp_quad(gray, q) for q in quads])
        ll, ceiling, p_tag = self.scores(crops)
        guess, margin, top = best_two(ll)
        misfit = ceiling - top
        best: dict[int, TagRead] = {}
        for i in np.flatnonzero(self.accept(margin, misfit, p_tag)):
            tag_id = self.ids[int(guess[i])]
            if tag_id not in best or margin[i] > best[tag_id].margin:  # one item is in one place
                quad = np.asarray(quads[i], np.float64).reshape(4, 2)
                best[tag_id] = TagRead(tag_id, quad, float(margin[i]), float(misfit[i]), float(p_tag[i]))
        return sorted(best.values(), key=lambda r: r.tag_id)


def best_two(ll: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For (N, K) log-likelihoods: (N,) column of the best, its margin over the runner-up (inf when K is 1;
    -inf entries, ids ruled out, count as absent), and (N,) the best value."""
    order = np.argsort(-ll, axis=1)
    top = np.take_along_axis(ll, order[:, :1], axis=1)[:, 0]
    second = np.take_along_axis(ll, order[:, 1:2], axis=1)[:, 0] if ll.shape[1] > 1 else np.full(len(ll), -np.inf)
    with np.errstate(invalid="ignore"):  # every id ruled out: -inf - -inf, no read
        margin = np.nan_to_num(top - second, nan=-np.inf)
    return order[:, 0], margin, top
