"""Train the spatial memory model on generator training streams with truncated BPTT.

    spatial-memory train --out runs/model.pt             # the CPU default (about 31 min on 2 cores)
    spatial-memory train --out runs/model.pt --resume    # continue from runs/model.pt.state

Each of `batch` lanes walks a training stream from its start in chunks of `clip` frames: one optimizer
step per chunk, the memory carried from chunk to chunk (detached: truncated BPTT) and reset when the
lane starts its next stream. Streams are rendered in worker processes in a fixed order of seeds and
each is walked `reuse` times, and the learning rate follows the steps alone (the time limit only stops the
run), so a run is reproducible from its seed, however fast the workers or the machine are. --resume goes on
exactly where the state file left off: the lanes' streams and places in them, the memory they carry, the
streams due to be walked again and the random generators are saved with the weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..core.errors import BadInputError
from .checkpoint import (
    MISFIT_ERRORS,
    build_model,
    check_finite,
    load_file,
    resolve_device,
    save_model,
    save_training_state,
    short_reason,
)
from .config import LARGE, ModelConfig, TrainConfig
from .losses import LossWeights, anchor_loss, consistency_loss, cpc_loss, mask_loss, reid_loss
from .model import SpatialMemoryModel
from .provenance import machine
from .train_streams import Lanes, StreamSource

LOG = logging.getLogger(__name__)


def chunk_loss(
    model: SpatialMemoryModel,
    batch: dict[str, torch.Tensor],
    state: torch.Tensor,
    weights: LossWeights,
    use_memory: bool = True,
    anchor: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    anchor_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """Run one chunk; returns (total loss, its parts, the final state). batch tensors are time first.

    anchor: per frame, another model's (change logits, patch logits) on this chunk (TrainConfig.anchor);
    the loss keeps this model's near them on lanes not recoloured (batch["at_home"]) at frames without a
    still background, weighted anchor_weight."""
    cfg = model.config
    images, masks, poses = batch["images"], batch["masks"], batch["poses"]
    K, has_pose = batch["K"], batch["has_pose"]
    T = images.shape[0]
    states, cameras, embeds = [state], [], []
    parts: dict[str, float] = {"inter": 0.0, "union": 0.0}
    loss_mask = images.new_zeros((), dtype=torch.float32)
    loss_anchor = images.new_zeros((), dtype=torch.float32)
    for t in range(T):
        background = batch["background"][t] if "background" in batch else None
        background_valid = batch["background_valid"][t] if "background_valid" in batch else None
        out = model(images[t], K, poses[t], has_pose, states[-1], use_memory=use_memory, background=background,
                    background_valid=background_valid)
        loss_mask = loss_mask + mask_loss(out.change_logits, out.patch_logits, masks[t], cfg.patch_size, weights,
                                          batch["scene"][t] if "scene" in batch else None, edge_lanes=background_valid)
        if anchor is not None:
            select = batch["at_home"] & ~background_valid if background_valid is not None else batch["at_home"]
            loss_anchor = loss_anchor + anchor_loss(out.change_logits, out.patch_logits, *anchor[t], select)
        with torch.no_grad():
            pred = torch.nn.functional.interpolate(out.change_logits, size=masks.shape[-2:], mode="bilinear") > 0
            truth = masks[t] > 0.5
            parts["inter"] += float((pred & truth).sum())
            parts["union"] += float((pred | truth).sum())
        states.append(out.state)
        cameras.append(out.camera)
        embeds.append(out.embeddings)
    S = cfg.memory_slots  # the slots; a place memory's cells follow them in the state and predict nothing
    # a memory-dropout chunk (the ablation) has no memory to make predictive: its forecasts read the carried one
    l_cpc = predictive_loss(model, images, states, cameras, weights) if use_memory else loss_mask.new_zeros(())
    l_cons = consistency_loss([x[:, :S] for x in states], images) if use_memory else loss_mask.new_zeros(())
    l_reid = reid_loss(torch.stack(embeds), batch["labels"].flatten(2), weights.temperature)
    loss = (loss_mask + anchor_weight * loss_anchor) / T + weights.cpc * l_cpc + weights.consistency * l_cons \
        + weights.reid * l_reid
    logs = {
        "loss": loss.item(), "mask": loss_mask.item() / T, "cpc": l_cpc.item(), "cons": l_cons.item(),
        "reid": l_reid.item(), "anchor": loss_anchor.item() / T, "iou": parts["inter"] / max(parts["union"], 1.0),
    }
    return loss, logs, states[-1]


def predictive_loss(
    model: SpatialMemoryModel, images: torch.Tensor, states: list[torch.Tensor], cameras: list[torch.Tensor],
    weights: LossWeights,
) -> torch.Tensor:
    """InfoNCE of the memory after frame t (with the camera at t + k) against frame t + k's own features.

    images (T, B, 3, H, W); states: the chunk's T + 1 states, its initial one first; cameras: T pose embeddings.
    The target is the frame alone (SpatialMemoryModel.frame_tokens), computed without gradient: the memory must
    learn to predict the picture, and the encoder is not pulled toward features that are easy to predict. 0 where
    the loss could train nothing (its weight 0, or the predictive head frozen: a --freeze-base fine-tune), so no
    encoder pass is spent on it, and where no frame of the chunk has one k ahead."""
    k, T = model.config.predict_k, images.shape[0]
    head = model.predict_head
    if weights.cpc == 0 or k >= T or not any(p.requires_grad for p in head.parameters()):
        return states[0].new_zeros((), dtype=torch.float32)
    S = model.config.memory_slots
    predictions = torch.cat([head.predict(states[t + 1][:, :S], cameras[t + k]) for t in range(T - k)])
    with torch.no_grad():  # frames k..T-1 in one pass, time-major as the predictions
        seen = model.frame_tokens(images[k:].flatten(0, 1))  # ((T - k) B, N, D)
    return cpc_loss(predictions, head.target(seen), weights.temperature)


@torch.no_grad()
def _teacher_chunk(
    teacher: SpatialMemoryModel, batch: dict[str, torch.Tensor], state: torch.Tensor
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """The anchor model's (change logits, patch logits) per frame of the chunk, run as at run time (its
    memory on, its own inputs: a model without the background input gets none); and its state after."""
    out = []
    for t in range(batch["images"].shape[0]):
        background = batch["background"][t] if teacher.config.background and "background" in batch else None
        valid = batch["background_valid"][t] if background is not None else None
        step = teacher(batch["images"][t], batch["K"], batch["poses"][t], batch["has_pose"], state,
                       background=background, background_valid=valid)
        out.append((step.change_logits, step.patch_logits))
        state = step.state
    return out, state


def _init_from(model: SpatialMemoryModel, path: Path) -> dict[str, Any]:
    """Load a model file's weights into `model`; modules the file lacks (a place memory) keep their init.
    Returns the file's meta, which the new file keeps as init_meta: how the weights it started from were made."""
    data = load_file(path)
    try:
        weights = dict(data["model"])
        key = "encoder.patch.weight"  # a file without the background input: its frame channels, the rest from zero
        mine = model.state_dict()[key]
        if key in weights and weights[key].shape[1] < mine.shape[1]:
            grown = torch.zeros_like(mine)
            grown[:, : weights[key].shape[1]] = weights[key]
            weights[key] = grown
    except MISFIT_ERRORS as e:  # its weights are not a mapping of tensors: not one of ours
        raise BadInputError(f"--init {path} holds no weights this version reads: {short_reason(e)}") from e
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # a tensor of another shape
        raise BadInputError(f"--init {path} does not fit this model: it was made with other options (--large, "
                            f"--background, --place-cells?): {short_reason(e)}") from e
    # a diverged run's weights train on without a word, and the file made from them is one no loader takes
    check_finite(model, f"--init {path}")
    if unexpected:
        raise BadInputError(f"--init {path} has weights this model lacks (a --still-head or --place-cells it was "
                            f"made with?): {unexpected[:5]}")
    LOG.info("started from %s; fresh: %s", path, sorted({m.split(".")[0] for m in missing}) or "nothing")
    return dict(data.get("meta", {}))


def _lr(step: int, tc: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 5 % by step. By step alone: a schedule that also followed the clock
    made the same command give other weights on a slower or busier machine."""
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    progress = (step - tc.warmup) / max(tc.steps - tc.warmup, 1)
    return tc.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


# TrainConfig fields a resumed run may change: where and how fast it runs, and how long (more --steps
# stretch the schedule from there on). Any other change would make it another run under the same name.
RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every", "workers", "threads", "device", "time_limit_min"})


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[None]:
    """Hold a SIGINT (Ctrl-C) that arrives inside the block and raise it as KeyboardInterrupt when the block ends.

    Only in the main thread (the only one Python delivers signals to) and only where SIGINT is not ignored (a
    run started with nohup stays deaf to it, as before)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) in (
            signal.SIG_IGN, None):
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


def _check_same_run(saved: dict[str, Any], tc: TrainConfig, state_path: Path) -> None:
    now = dataclasses.asdict(tc)
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and k in saved and saved[k] != now[k])
    if changed:
        was = ", ".join(f"{k}={saved[k]!r}" for k in changed)
        raise BadInputError(f"{state_path} was started with other settings: resume with {was} (only "
                            f"{', '.join(sorted(RESUMABLE_CHANGES))} may change)")


def train(
    tc: TrainConfig,
    out: Path,
    *,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
    progress: Callable[[Iterator[int], int, int], Iterator[int]] | None = None,
) -> dict[str, Any]:
    """Train and write `out` (model file) plus `out`.state (for --resume). Returns a summary dict.

    progress: wraps the step iterator (e.g. tqdm); called as progress(iterable, total, initial).
    """
    tc.validate()
    torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)
    model_cfg = dataclasses.replace(LARGE if tc.large else ModelConfig(), place_cells=tc.place_cells,
                                    background=tc.background, background_skips_changes=tc.background_skips_changes,
                                    still_head=tc.still_head)
    model = SpatialMemoryModel.from_config(model_cfg).to(device)
    if tc.clip <= model_cfg.predict_k:  # a test's tiny run may; a real one should know (the loss was 0, unsaid)
        LOG.warning("--clip %d is not more than the model's predict_k (%d): no frame of a chunk has one %d ahead, "
                    "so the predictive (InfoNCE) loss is off in this run", tc.clip, model_cfg.predict_k,
                    model_cfg.predict_k)
    init_meta = _init_from(model, Path(tc.init)) if tc.init and not resume else None
    if tc.freeze_base:  # only the still head learns (model/still_head.py)
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("still."))
    teacher = build_model(tc.init, device) if tc.anchor > 0 else None  # the model the fine-tune stays near
    if teacher is not None:
        teacher.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=tc.lr, weight_decay=tc.weight_decay)
    # the weights' moving average (tc.ema), which OUT then holds; it reads the weights, never steers them
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema), use_buffers=True) if tc.ema else None
    written = model if averaged is None else cast(SpatialMemoryModel, averaged.module)  # what OUT holds
    state_path = out.with_name(out.name + ".state")
    step, first_stream, minutes_before = 0, 0, 0.0
    resumed: dict[str, Any] | None = None
    machines_before: list[Any] = []  # the sessions before this one (a resumed run's)
    if not resume and state_path.exists():
        # a run of maybe hours: starting again over it without --resume threw it away without a word
        raise BadInputError(f"{state_path} holds a training run already: --resume to go on from it, or give another "
                            "--out (or delete it to start again)")
    if resume:
        data = load_file(state_path)
        if not {"optimizer", "step", "next_stream"} <= set(data):
            raise BadInputError(f"{state_path} is a model file, not a training state (--resume reads the OUT.state "
                                "that a run writes beside OUT)")
        try:
            saved_cfg = ModelConfig.from_dict(data["config"])
            meta_before = dict(data["meta"])
        except (KeyError, TypeError, ValueError) as e:  # another version's file, or not one of ours
            raise BadInputError(f"{state_path} is not a training state this version can resume: "
                                f"{short_reason(e)}") from e
        if saved_cfg != model_cfg:
            raise BadInputError(f"{state_path} was trained with another model config: resume with the options it "
                                "was started with (--large, --background, --still-head, --place-cells)")
        try:
            model.load_state_dict(data["model"])
            optimizer.load_state_dict(data["optimizer"])
        except (RuntimeError, ValueError) as e:  # another set of trainable weights
            raise BadInputError(f"{state_path} does not fit this run (was it started with another --freeze-base?): "
                                f"{short_reason(e)}") from e
        _check_same_run(dict(meta_before.get("train_config", {})), tc, state_path)
        step, first_stream = int(data["step"]), int(data["next_stream"])
        minutes_before = float(meta_before.get("minutes", 0.0))
        machines_before = list(meta_before.get("machines", []))
        init_meta = meta_before.get("init_meta")
        resumed = data.get("resume")  # lanes, carried memory, generators: absent in an older version's file
        if resumed is None:
            LOG.warning("%s holds no lane positions or generator states (an older version's file): the run goes "
                        "on from fresh streams, not exactly as it would have", state_path)
        if averaged is not None:
            if resumed is None or resumed.get("ema") is None:
                raise BadInputError(f"{state_path} holds no moving average of the weights to go on with (--ema): "
                                    "an older version's file")
            averaged.load_state_dict(resumed["ema"])
    meta = {**(meta or {}), "train_config": dataclasses.asdict(tc)}
    # one entry per session: a resumed run may have gone on on another box, whose arithmetic differs
    meta["machines"] = [*machines_before, machine(device, tc.threads)]
    if init_meta is not None:  # a fine-tune: the file records the chain of runs that made it
        meta["init_meta"] = init_meta
    rng = np.random.default_rng([tc.seed, step])
    source = StreamSource(tc.seed + first_stream, tc.stream_frames, model_cfg, tc.workers, tc.teleports, tc.recolour,
                          tc.recolour_patrol, tc.photos, tc.decoys, tc.floors)
    lanes = Lanes(source, tc, rng)
    weights = LossWeights(scene=tc.scene_weight, edge=tc.edge_weight)
    amp = device.type == "cuda"
    state = model.initial_state(tc.batch, device).detach()
    teacher_state = teacher.initial_state(tc.batch, device) if teacher is not None else None
    if resumed is not None:
        lanes.restore(resumed["lanes"], source.render)
        state = resumed["carried"].to(device)
        if teacher_state is not None and resumed.get("teacher_carried") is not None:
            teacher_state = resumed["teacher_carried"].to(device)
        torch.set_rng_state(resumed["torch_rng"])
        if device.type == "cuda" and resumed.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resumed["cuda_rng"], device)
    start = time.monotonic()
    logs: dict[str, float] = {}
    steps = range(step, tc.steps)
    it = progress(iter(steps), tc.steps, step) if progress else iter(steps)

    def between_steps() -> dict[str, Any]:
        """The run as it stands between two steps, which is what a save writes: a Ctrl-C in the middle of a step
        has moved the lanes, the generators and the stream count on by a chunk that was never trained, and a run
        resumed from those skipped it. Lane seeds and generator states: cheap to take every step."""
        return {
            "lanes": lanes.snapshot(), "carried": state.detach(),
            "teacher_carried": None if teacher_state is None else teacher_state.detach(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "fetched": source.fetched,
        }

    def save(done: int, final: bool) -> None:
        info = {**meta, "step": done, "minutes": minutes_before + (time.monotonic() - start) / 60, "final": final}
        resume_from = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in boundary.items() if k != "fetched"}
        # between steps, as the raw weights are: the average moves inside the step's deferred block with them
        resume_from["ema"] = None if averaged is None else {k: v.cpu() for k, v in averaged.state_dict().items()}
        save_training_state(state_path, model, optimizer, done, first_stream + boundary["fetched"], info, resume_from)
        save_model(out, written, info)

    done = first_step = step
    stepping = False
    boundary = between_steps()
    try:
        for step in it:
            for group in optimizer.param_groups:
                group["lr"] = _lr(step, tc)
            batch, reset = lanes.next_chunk()
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            init = model.initial_state(tc.batch, device)
            fresh = torch.tensor(reset, device=device)[:, None, None]
            chunk_state = torch.where(fresh, init, state)  # new streams start from the learned initial state
            use_memory = bool(rng.random() >= tc.memory_dropout)
            anchor = None
            if teacher is not None:
                assert teacher_state is not None
                teacher_state = torch.where(fresh, teacher.initial_state(tc.batch, device), teacher_state)
                anchor, teacher_state = _teacher_chunk(teacher, batch, teacher_state)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss, logs, last = chunk_loss(model, batch, chunk_state, weights, use_memory, anchor, tc.anchor)
            if not math.isfinite(logs["loss"]):
                # diverged: a step, and the next checkpoint, would write non-finite weights over the last good ones
                raise BadInputError(f"the loss is not finite at step {step + 1} ({logs}): training stopped without "
                                    f"saving; {out} and {state_path} hold the last checkpoint, if any (--resume goes "
                                    "on from it)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            # a Ctrl-C inside optimizer.step() would leave the weights half stepped: it is held until the step is
            # done and counted, then saved below; where it cannot be held (not the main thread), nothing is saved
            stepping = True
            with interrupt_deferred():
                optimizer.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                state = last.detach()
                done = step + 1
                boundary = between_steps()
                stepping = False
            if hasattr(it, "set_postfix"):
                it.set_postfix({k: f"{v:.3f}" for k, v in logs.items()}, refresh=False)
            if done % tc.checkpoint_every == 0 and done < tc.steps:
                save(done, final=False)
            # this session's minutes: counted over every session, a run stopped by the limit and resumed with the
            # same command did one step and stopped again
            if (time.monotonic() - start) / 60 > tc.time_limit_min:
                LOG.warning("time limit %.0f min reached after %d of %d steps: saving, stopping (--resume goes on)",
                            tc.time_limit_min, done, tc.steps)
                break
        save(done, final=done >= tc.steps)  # cut short by the time limit: not final, --resume finishes it
    except KeyboardInterrupt:  # Ctrl-C: keep the steps done since the last checkpoint (--resume goes on from them)
        if done > first_step and not stepping:
            LOG.warning("interrupted after %d steps: saving, stopping", done)
            save(done, final=False)
        raise
    finally:
        source.close()
    return {"steps": done, "minutes": (time.monotonic() - start) / 60, **logs}
