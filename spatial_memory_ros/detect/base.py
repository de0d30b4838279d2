"""The one interface every detector backend implements, and the class-name -> item/dynamic rule they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..core.config import DetectorConfig
from ..core.types import Detection, Frame


@runtime_checkable
class ObjectDetector(Protocol):
    """Finds things in one frame.

    detect() returns boxes in the frame's pixels (x1, y1, x2, y2), labels and scores in 0..1; it sets
    ``item`` for identified items and ``is_dynamic`` for classes that move on their own. A position is
    set only when the backend measures one itself (AprilTag pose); the pipeline lifts the rest.
    """

    def detect(self, frame: Frame) -> list[Detection]: ...


_MIN_SIDE_PX = 1.0  # a box narrower or lower than a pixel (after clip_boxes) shows nothing


def class_detections(
    boxes: np.ndarray, labels: Sequence[str], scores: np.ndarray, config: DetectorConfig
) -> list[Detection]:
    """Detections for the classes the config keeps (item and dynamic classes), in score order.

    boxes (N, 4) px, labels (N,), scores (N,). An item class's detection names the item after the class;
    other classes are dropped, because a generic COCO model's rarer classes are mostly false alarms in
    a room and would only add tracks nobody asked for.
    """
    items, dynamic = set(config.item_classes), set(config.dynamic_classes)
    out = []
    for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        label, score = labels[i], float(scores[i])
        if score < config.score_threshold or (label not in items and label not in dynamic):
            continue
        x1, y1, x2, y2 = (float(v) for v in np.asarray(boxes[i]).reshape(4))
        if x2 - x1 < _MIN_SIDE_PX or y2 - y1 < _MIN_SIDE_PX:  # wholly outside the image, clipped to a line: it
            continue  # overlapped nothing, so the one object got a new track id every frame
        out.append(
            Detection(
                box=np.asarray(boxes[i], dtype=np.float64).copy(),
                label=label,
                score=score,
                item=label if label in items else "",
                is_dynamic=label in dynamic,
            )
        )
    return out


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 4) boxes clipped to the image; degenerate ones keep x2 >= x1, y2 >= y1."""
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    out[:, 2] = np.maximum(out[:, 2], out[:, 0])
    out[:, 3] = np.maximum(out[:, 3], out[:, 1])
    return out
