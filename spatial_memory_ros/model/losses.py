"""Training losses over one truncated-BPTT chunk of T steps.

- mask_loss: supervised BCE + soft dice on the generator's change mask (plus a coarse per-patch BCE),
  optionally weighting the unchanged cells just outside a change higher (the edge band, where a halo grows);
- cpc_loss: InfoNCE, the memory at t (with the camera pose at t + k) predicts the features of frame t + k (the
  frame alone: model.train.predictive_loss) against every other (stream, time) pair of the chunk as negatives;
- consistency_loss: penalises memory updates that the frames do not back: the squared change of the
  state, weighted by how little of the picture changed between the two frames (a fixed scale);
- anchor_loss: keeps the change logits near another model's (soft BCE), on the lanes it is asked for;
- reid_loss: supervised contrastive loss on embeddings pooled per object instance, positives being the
  same instance in other frames of the chunk (re-identification across time and occlusion).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    mask: float = 1.0
    dice: float = 0.5
    patch: float = 0.3
    cpc: float = 0.1
    consistency: float = 1.0
    reid: float = 0.1
    temperature: float = 0.1  # of both InfoNCE losses
    pos_weight: float = 1.0  # BCE weight of changed pixels; 1 keeps P(changed) calibrated (dice handles the imbalance)
    scene: float = 0.0  # extra BCE weight of changed pixels off every agent (what only a memory can find)
    # extra BCE weight of unchanged cells within edge_px (model input px) of a change, on the lanes asked for:
    # a model that marks a ring around every agent loses little with the plain loss (few cells) but much
    # precision at the bench's resolution (BENCHMARKS "A fine-tune anchored to the shipped model": the halo)
    edge: float = 0.0
    edge_px: int = 2


def edge_band(target: torch.Tensor, px: int) -> torch.Tensor:
    """target (B, 1, H, W) in {0, 1} -> (B, 1, H, W) in {0, 1}: unchanged pixels within px (square) of a change."""
    grown = F.max_pool2d(target, kernel_size=2 * px + 1, stride=1, padding=px)
    return grown * (1.0 - target)


def mask_loss(
    logits: torch.Tensor, patch_logits: torch.Tensor, target: torch.Tensor, patch_size: int, weights: LossWeights,
    scene: torch.Tensor | None = None, edge_lanes: torch.Tensor | None = None,
) -> torch.Tensor:
    """logits (B, 1, h, w); patch_logits (B, N); target (B, 1, H, W) in {0, 1} at the model input size;
    scene (B, 1, H, W) in {0, 1}: changed pixels off every agent, weighted 1 + weights.scene in the BCE;
    edge_lanes (B,) bool: the lanes whose edge band (edge_band) is weighted 1 + weights.edge; None = all."""
    logits, patch_logits = logits.float(), patch_logits.float()
    size = (logits.shape[-2], logits.shape[-1])
    soft = F.adaptive_avg_pool2d(target, size)  # (B, 1, h, w) fraction changed per cell
    pos_weight = torch.tensor(weights.pos_weight, device=logits.device)
    pixel_weight = None
    if scene is not None and weights.scene > 0:
        pixel_weight = 1.0 + weights.scene * F.adaptive_avg_pool2d(scene, size)
    if weights.edge > 0:
        band = F.adaptive_avg_pool2d(edge_band(target, weights.edge_px), size)  # fraction of the cell in the band
        if edge_lanes is not None:
            band = band * edge_lanes.to(band.dtype).view(-1, 1, 1, 1)
        pixel_weight = (1.0 if pixel_weight is None else pixel_weight) + weights.edge * band
    bce = F.binary_cross_entropy_with_logits(logits, soft, weight=pixel_weight, pos_weight=pos_weight)
    p = torch.sigmoid(logits)
    inter = (p * soft).sum(dim=(1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum(dim=(1, 2, 3)) + soft.sum(dim=(1, 2, 3)) + 1)  # (B,)
    patch_target = F.avg_pool2d(target, patch_size).flatten(1)  # (B, N)
    patch = F.binary_cross_entropy_with_logits(patch_logits, patch_target, pos_weight=pos_weight)
    return weights.mask * bce + weights.dice * dice.mean() + weights.patch * patch


def anchor_loss(
    logits: torch.Tensor, patch_logits: torch.Tensor, teacher_logits: torch.Tensor, teacher_patch: torch.Tensor,
    select: torch.Tensor,
) -> torch.Tensor:
    """Soft-target BCE of logits (B, 1, h, w) and patch_logits (B, N) against another model's (same shapes),
    over the lanes select (B,) bool; 0 when none is selected. Learning without forgetting: the other model's
    P(changed) is the target, so the fine-tune keeps what that model did well there."""
    if not bool(select.any()):
        return logits.new_zeros((), dtype=torch.float32)
    pix = F.binary_cross_entropy_with_logits(logits[select].float(), torch.sigmoid(teacher_logits[select].float()))
    patch = F.binary_cross_entropy_with_logits(patch_logits[select].float(),
                                               torch.sigmoid(teacher_patch[select].float()))
    return pix + patch


def cpc_loss(predictions: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE. predictions (M, E): forecasts of the frames whose features are the rows of targets (M, E), both
    L2-normalised; row i of targets is the positive of row i of predictions, every other row a negative (the
    chunk's other (lane, time) pairs)."""
    logits = predictions.float() @ targets.float().T / temperature  # (M, M)
    return F.cross_entropy(logits, torch.arange(len(predictions), device=predictions.device))


# What counts as visual evidence between two frames: the share of pixels that moved by more than 0.1 in some
# channel (sensor noise on the training scenes moves next to none; a person or a turn moves 1-15 %), against
# a fixed scale: 0.5 % of the picture changed leaves 37 % of the penalty. It was the encoder tokens' change over
# their chunk's mean: scale-free, so a chunk in which nothing changed paid as one in which all did, and the
# tokens carry the memory read and the pose, so memory backed itself.
EVIDENCE_PIXEL = 0.1
EVIDENCE_SCALE = 0.005


def visual_evidence(images: torch.Tensor) -> torch.Tensor:
    """images (T, B, 3, H, W) uint8 -> (T - 1, B): the share of pixels that changed from each frame to the next."""
    x = images.float() / 255.0
    moved = (x[1:] - x[:-1]).abs().amax(dim=2) > EVIDENCE_PIXEL  # (T-1, B, H, W)
    return moved.float().mean(dim=(2, 3))


def consistency_loss(states: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """states: T + 1 states (B, S, D), the chunk's initial one first; images: the chunk (T, B, 3, H, W) uint8.
    The memory's change from one frame to the next, weighted by how little the picture changed."""
    if images.shape[0] < 2:
        return states[0].new_zeros(())
    d_mem = torch.stack([(b - a).pow(2).mean(dim=(1, 2)) for a, b in zip(states[1:-1], states[2:])])  # (T-1, B)
    unexplained = torch.exp(-visual_evidence(images) / EVIDENCE_SCALE)  # (T-1, B): 1 = the view did not change
    return (unexplained * d_mem).mean()


def reid_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss on instance-pooled embeddings.

    embeddings: (T, B, N, E) L2-normalised patch embeddings; labels: (T, B, N) int64 instance id per
    patch, 0 = none, unique per instance across the batch. Each (frame, instance) pair is pooled into
    one vector; the other frames of the same instance are its positives, everything else negatives.
    """
    T, B, N, E = embeddings.shape
    flat = labels.reshape(-1)
    keep = flat > 0
    if int(keep.sum()) == 0:
        return embeddings.new_zeros(())
    frame = torch.arange(T * B, device=labels.device).repeat_interleave(N)[keep]
    inst = flat[keep]
    code = frame * (int(labels.max()) + 1) + inst
    uniq, inverse = torch.unique(code, return_inverse=True)  # (U,), (K,)
    pooled = torch.zeros(len(uniq), E, device=embeddings.device, dtype=torch.float32)
    pooled.index_add_(0, inverse, embeddings.reshape(-1, E)[keep].float())
    pooled = F.normalize(pooled, dim=-1)  # (U, E)
    uniq_inst = uniq % (int(labels.max()) + 1)
    uniq_frame = uniq // (int(labels.max()) + 1)
    same = uniq_inst[:, None] == uniq_inst[None, :]
    other_frame = uniq_frame[:, None] != uniq_frame[None, :]
    positives = same & other_frame  # (U, U)
    anchors = positives.any(dim=1)
    if int(anchors.sum()) == 0:
        return embeddings.new_zeros(())
    logits = pooled @ pooled.T / temperature
    logits = logits.masked_fill(torch.eye(len(uniq), dtype=torch.bool, device=logits.device), float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos_log_prob = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    return -(pos_log_prob[anchors] / positives[anchors].sum(dim=1)).mean()
