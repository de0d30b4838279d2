"""A tiny YOLOv8-layout ONNX detector, built with onnx's helper API so tests need no torch export or download.

The "network": 8x8 average pooling of the 64x64 RGB input, a 1x1 convolution that scores each 8x8 cell
for a red and a blue class, a sigmoid, and constant boxes (each cell's own square). Output (1, 4 + 2, 64):
cx, cy, w, h in input pixels, then the two class scores: the layout onnx_yolo.py documents.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 64  # input S
CELL = 8
CLASSES = ("thing", "person")  # class 0 fires on red cells, class 1 on blue cells


def cell_boxes() -> np.ndarray:
    """(4, N) cx, cy, w, h of every cell, row-major, in input pixels."""
    n = SIZE // CELL
    rows, cols = np.mgrid[0:n, 0:n]
    cx = (cols.reshape(-1) + 0.5) * CELL
    cy = (rows.reshape(-1) + 0.5) * CELL
    return np.stack([cx, cy, np.full(n * n, CELL), np.full(n * n, CELL)]).astype(np.float32)


def write_model(path: Path, *, sigmoid: bool = True) -> Path:
    """sigmoid False: the class outputs are the logits (an export that dropped its final sigmoid)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = (SIZE // CELL) ** 2
    # score = sigmoid(20 * (own colour - other two) - 10): ~1 on a saturated cell, ~0 on black, grey or white.
    w = np.array([[20.0, -20.0, -20.0], [-20.0, -20.0, 20.0]], dtype=np.float32).reshape(2, 3, 1, 1)
    b = np.array([-10.0, -10.0], dtype=np.float32)
    inits = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(b, "B"),
        numpy_helper.from_array(cell_boxes()[None], "boxes"),  # (1, 4, N)
        numpy_helper.from_array(np.array([1, len(CLASSES), n], dtype=np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[CELL, CELL], strides=[CELL, CELL]),
        helper.make_node("Conv", ["pooled", "W", "B"], ["logits"]),
        helper.make_node("Sigmoid" if sigmoid else "Identity", ["logits"], ["scores_map"]),
        helper.make_node("Reshape", ["scores_map", "shape"], ["scores"]),
        helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + len(CLASSES), n])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_labels(path: Path) -> Path:
    path.write_text("\n".join(CLASSES) + "\n")
    return path


def scene() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A 128x96 BGR image and the expected box (x1, y1, x2, y2) of each class in it.

    Letterboxed into 64x64 it is scaled by 0.5 and padded 8 px top and bottom, so the input cell
    (row r, col c) is the image square x 16c..16c+16, y 16r-16..16r.
    """
    img = np.zeros((96, 128, 3), np.uint8)
    red = np.array([80.0, 32.0, 96.0, 48.0])  # cell (3, 5)
    blue = np.array([16.0, 64.0, 32.0, 80.0])  # cell (5, 1)
    img[32:48, 80:96] = (0, 0, 255)
    img[64:80, 16:32] = (255, 0, 0)
    return img, {"thing": red, "person": blue}
