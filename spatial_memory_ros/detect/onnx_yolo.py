"""A user-supplied YOLO-style ONNX detector through onnxruntime (CUDA when present, else CPU).

Expected model, as Ultralytics exports YOLOv5/v8/v11 (``yolo export format=onnx``):

- input: one float32 tensor (1, 3, S, S), RGB scaled to 0..1. The frame is letterboxed into it (scaled
  to fit, centred, padded with grey 114). S comes from the model; a dynamic size means 640.
- output 0, with C = the number of class names (``detector.labels_path``, default the 80 COCO classes):
  - (1, 4 + C, N) (YOLOv8/v11) or its transpose (1, N, 4 + C): per candidate box cx, cy, w, h in input
    pixels, then C class scores in 0..1;
  - (1, N, 5 + C) (YOLOv5): cx, cy, w, h, objectness, then C class scores; score = objectness x class.
  The layout is chosen by which axis has 4 + C (or 5 + C) entries. No NMS in the model: it is done here
  per class (``detector.nms_iou``); an end-to-end export with NMS inside is not supported.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..core.config import DetectorConfig
from ..core.errors import BadInputError
from ..core.types import Detection, Frame
from .base import class_detections, clip_boxes
from .coco_names import COCO_80

DEFAULT_INPUT_SIZE = 640  # for models exported with a dynamic input size
PAD_VALUE = 114  # Ultralytics' letterbox grey


def read_labels(path: str) -> tuple[str, ...]:
    """Class names, one per line, blank lines skipped; "" = the 80 COCO classes."""
    if not path:
        return COCO_80
    try:
        names = tuple(line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError as e:
        raise BadInputError(f"cannot read detector.labels_path {path}: {e}") from None
    if not names:
        raise BadInputError(f"detector.labels_path {path} holds no class names")
    return names


def providers_for(device: str, available: list[str]) -> list[str]:
    """onnxruntime execution providers for device auto | cpu | cuda, given the available ones."""
    if device not in ("auto", "cpu", "cuda"):
        raise BadInputError(f"device must be auto, cpu or cuda, got {device!r}")
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise BadInputError(
            f"device=cuda but onnxruntime has no CUDAExecutionProvider (available: {available}); "
            "install onnxruntime-gpu or use device auto/cpu"
        )
    if device != "cpu" and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def letterbox(image_bgr: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """(1, 3, size, size) float32 RGB 0..1, the scale and the (x, y) padding, so box_in = box * scale + pad."""
    h, w = image_bgr.shape[:2]
    scale = min(size / w, size / h)
    nw, nh = max(int(round(w * scale)), 1), max(int(round(h * scale)), 1)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    canvas[py : py + nh, px : px + nw] = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    blob = cv2.dnn.blobFromImage(canvas, scalefactor=1.0 / 255.0, swapRB=True)  # (1, 3, S, S)
    return blob, scale, (float(px), float(py))


def decode(output: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw output (see the module docstring) -> boxes (N, 4) x1y1x2y2 input px, class ids (N,), scores (N,)."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if out.ndim != 2:
        raise BadInputError(f"ONNX detector output must be (1, 4 + C, N) or (1, N, 4 + C), got {output.shape}")
    if out.shape[0] == 4 + num_classes:
        rows, objectness = out.T, False  # (N, 4 + C)
    elif out.shape[1] == 4 + num_classes:
        rows, objectness = out, False
    elif out.shape[1] == 5 + num_classes:
        rows, objectness = out, True
    else:
        raise BadInputError(
            f"ONNX detector output {output.shape} does not fit {num_classes} classes: expected an axis of "
            f"{4 + num_classes} (YOLOv8) or {5 + num_classes} (YOLOv5); check detector.labels_path"
        )
    cls = rows[:, 5:] * rows[:, 4:5] if objectness else rows[:, 4:]  # (N, C)
    class_ids = cls.argmax(axis=1)
    scores = cls[np.arange(len(cls)), class_ids]
    cx, cy, bw, bh = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    boxes = np.column_stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
    return boxes.astype(np.float64), class_ids, scores.astype(np.float64)


class OnnxYoloDetector:
    """A YOLO-style ONNX model (layout in the module docstring) on onnxruntime.

    device: auto (CUDA if onnxruntime has it, else CPU), cpu, or cuda (an error without CUDA).
    """

    def __init__(self, config: DetectorConfig, device: str = "auto") -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]  # only this backend needs it

        self.config = config
        self.class_names = read_labels(config.labels_path)
        if not Path(config.model_path).is_file():
            raise BadInputError(f"detector.model_path {config.model_path!r} is not a file")
        self.providers = providers_for(device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: the CUDA probe's warnings are expected on CPU machines
        try:
            self._session = ort.InferenceSession(config.model_path, options, providers=self.providers)
        except Exception as e:  # onnxruntime raises its own (non-exported) types for unreadable models
            raise BadInputError(f"cannot load ONNX model {config.model_path}: {e}") from None
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        shape = list(inp.shape)  # a dimension is an int, or a name / None where the model leaves it free
        fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
        if len(shape) != 4 or fixed[1] not in (None, 3) or None not in fixed[2:] and fixed[2] != fixed[3]:
            raise BadInputError(f"ONNX model {config.model_path}: its input {shape} is not (1, 3, S, S) (a square "
                                "NCHW image, as YOLOv5 / YOLOv8 exports are)")
        size = fixed[3] or fixed[2]  # a side the model fixes (the other may be free)
        self.input_size = size if size is not None else DEFAULT_INPUT_SIZE
        # One run on a blank image now, so that a model that cannot run, or whose output does not fit the labels,
        # stops the node at start with the reason, not every frame after it
        try:
            output = self._session.run(None, {self._input_name: np.zeros((1, 3, self.input_size, self.input_size),
                                                                         np.float32)})[0]
        except Exception as e:  # onnxruntime's own types again
            raise BadInputError(f"cannot run ONNX model {config.model_path}: {e}") from None
        _, _, scores = decode(output, len(self.class_names))  # BadInputError naming the labels when they do not fit
        if len(scores) and not (np.all(scores >= 0.0) and np.all(scores <= 1.0)):  # NaN fails too
            raise BadInputError(f"ONNX model {config.model_path}: its class scores on a blank image run from "
                                f"{np.nanmin(scores):.3g} to {np.nanmax(scores):.3g}; they must be probabilities "
                                "in [0, 1] (an export without the final sigmoid gives logits)")

    def raw(self, image_bgr: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Every candidate above the score threshold after per-class NMS: boxes (N, 4) px, labels, scores."""
        h, w = image_bgr.shape[:2]
        blob, scale, (px, py) = letterbox(image_bgr, self.input_size)
        output = self._session.run(None, {self._input_name: blob})[0]
        boxes, class_ids, scores = decode(output, len(self.class_names))
        keep = scores >= self.config.score_threshold
        boxes, class_ids, scores = boxes[keep], class_ids[keep], scores[keep]
        if len(boxes):
            xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
            idx = cv2.dnn.NMSBoxesBatched(
                xywh.tolist(), scores.tolist(), class_ids.tolist(), self.config.score_threshold, self.config.nms_iou
            )
            idx = np.asarray(idx, dtype=int).reshape(-1)
            boxes, class_ids, scores = boxes[idx], class_ids[idx], scores[idx]
        boxes = (boxes - np.array([px, py, px, py])) / scale
        return clip_boxes(boxes, w, h), [self.class_names[c] for c in class_ids], scores

    def detect(self, frame: Frame) -> list[Detection]:
        boxes, labels, scores = self.raw(frame.image)
        return class_detections(boxes, labels, scores, self.config)
