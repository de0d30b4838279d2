"""Checkpoints that carry their ModelConfig: save_model() writes one, build_model() rebuilds it.

A model file holds {"format", "config", "model", "meta"}; a training state file (for --resume) holds the
same plus the optimizer, the step and where the training data had got to.
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..core.atomic_file import replace_file
from ..core.errors import BadInputError
from .config import ModelConfig
from .model import SpatialMemoryModel

FORMAT = "spatial_memory_model/1"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "data" / "spatial_memory_model.pt"
# What torch.load raises for a file cut short (an interrupted copy), overwritten or never a torch file:
# a bad zip is a RuntimeError, bytes that are no pickle an UnpicklingError, an empty file an EOFError; a few
# bytes of text reach the legacy loader's pickle opcodes as a KeyError or IndexError, a torn header a struct.error.
_DAMAGED = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError,
            IndexError, struct.error)
# What rebuilding a module from a loaded file raises when its entries do not fit: a missing key, a wrong
# shape, a list where a dict belongs.
MISFIT_ERRORS = (KeyError, TypeError, ValueError, RuntimeError, AttributeError)


def read_torch_file(path: str | Path, what: str) -> Any:
    """torch.load(path) on the CPU, tensors and plain containers only (weights_only). BadInputError naming
    `what` and the path for a missing or damaged file. torch's own message for a damaged file is left out of
    ours: it suggests weights_only=False, which would run whatever code the file holds."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"the {what} {path} is a folder, not a file")
    if not path.is_file():
        raise BadInputError(f"no {what} at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except _DAMAGED as e:
        if isinstance(e, OSError) and e.errno is not None:  # a system call failed (permissions, I/O), not the content
            reason = f"{e.strerror or type(e).__name__}"
        elif "Weights only load failed" in str(e):  # whole, but holding what only unpickling code could rebuild
            reason = ("it holds Python objects besides tensors and plain containers (numpy values, paths ...), "
                      "which are not loaded, for safety")
        else:
            reason = f"the file is damaged (cut short?) or not a torch file ({type(e).__name__})"
        raise BadInputError(f"cannot read the {what} {path}: {reason}") from e


def resolve_device(device: str) -> torch.device:
    """'auto' (CUDA when available), 'cpu' or 'cuda' -> torch.device; BadInputError (a ValueError) otherwise."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise BadInputError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise BadInputError("device is cuda but torch sees no CUDA device; use auto or cpu")
    return torch.device(device)


def fp16_on_cuda(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """fp16 autocast on CUDA, nothing elsewhere. No autocast object at all on the CPU: an older torch (2.1.2, an
    apt python3-torch's age) refuses to build an fp16 CPU autocast even with enabled=False."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def short_reason(e: BaseException, limit: int = 240) -> str:
    """torch's load_state_dict error on one line: its first two lines (the model, the first misfit), cut at limit
    characters; the whole message runs to a line per tensor."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    more = f" (+{len(lines) - 2} more)" if len(lines) > 2 else ""
    text = " ".join(lines[:2])
    return (text if len(text) <= limit else text[: limit - 3] + "...") + more


def atomic_save(obj: dict[str, Any], path: Path) -> None:
    """torch.save through core.atomic_file.replace_file: a reader never sees half a file, even if the writer is killed
    mid-save or the power goes, and the file it replaces stays whole until then. BadInputError if it cannot be
    written (the CLIs call io.outputs.check_writable before their work; a checkpoint written every 100 steps need
    not probe again)."""
    try:
        replace_file(path, lambda f: torch.save(obj, f))
    except (OSError, RuntimeError) as e:  # torch raises RuntimeError for a file it cannot open
        reason = e.strerror if isinstance(e, OSError) and e.strerror else short_reason(e)
        raise BadInputError(f"cannot write {path}: {reason}") from e


def save_model(path: str | Path, model: SpatialMemoryModel, meta: dict[str, Any] | None = None) -> None:
    """Write the weights (float32, CPU) with the config; meta: JSON-like notes (command, seed, steps)."""
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    atomic_save({"format": FORMAT, "config": model.config.to_dict(), "model": state, "meta": meta or {}}, Path(path))


def load_file(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict, checked for its format; BadInputError (a ValueError) names what is wrong."""
    data = read_torch_file(path, "model checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInputError(f"{path} is not a spatial memory model checkpoint ({FORMAT})")
    return data


def build_model(path: str | Path = DEFAULT_CHECKPOINT, device: str | torch.device = "cpu") -> SpatialMemoryModel:
    """Rebuild the model a checkpoint describes, load its weights, move it to `device`, eval()."""
    data = load_file(path)
    try:
        model = SpatialMemoryModel.from_config(ModelConfig.from_dict(data["config"]))
        model.load_state_dict(data["model"])
    except MISFIT_ERRORS as e:
        raise BadInputError(f"model checkpoint {path}: its weights do not fit its config ({short_reason(e)})") from e
    check_finite(model, f"model checkpoint {path}")  # else every frame's memory would be NaN, its mask empty
    dev = resolve_device(device) if isinstance(device, str) else device
    return model.to(dev).eval()


def check_finite(model: torch.nn.Module, what: str) -> None:
    """BadInputError naming the weights of model that are not finite numbers, if any (a run that diverged)."""
    broken = [name for name, value in model.state_dict().items() if value.is_floating_point()
              and not torch.isfinite(value).all()]
    if broken:
        raise BadInputError(f"{what}: weights that are not finite numbers ({', '.join(broken[:3])}"
                            f"{' ...' if len(broken) > 3 else ''}): a training run that diverged?")


def checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The meta dict saved with a checkpoint (training command, seed, steps, minutes)."""
    return dict(load_file(path).get("meta", {}))


def save_training_state(
    path: str | Path,
    model: SpatialMemoryModel,
    optimizer: torch.optim.Optimizer,
    step: int,
    next_stream: int,
    meta: dict[str, Any],
    resume: dict[str, Any] | None = None,
) -> None:
    """Everything --resume needs: weights, optimizer, step, the next training stream's index, and (resume)
    where the lanes are, the memory they carry and the random generators' states."""
    atomic_save(
        {
            "format": FORMAT,
            "config": model.config.to_dict(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "next_stream": next_stream,
            "meta": meta,
            "resume": resume,
        },
        Path(path),
    )
