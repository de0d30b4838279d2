"""The learned model's one configuration: every size the network is built from, stored in its checkpoints."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

TRAIN_SEED_MIN = 1000  # scene seeds: 0-99 tests and demo; 100-199 benchmark (held out); >= 1000 training


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the spatial memory model. Defaults are the shipped CPU model (~0.3 M parameters).

    The image is resized to image_width x image_height before the encoder; masks come back at the
    caller's resolution. Larger dim/depth/slots learn more but cost speed: the CPU target is >= 30
    model steps/s on 2 cores, which the defaults meet with room for the rest of the pipeline.
    """

    image_width: int = 128  # px, model input (any camera image is resized to this)
    image_height: int = 96
    patch_size: int = 8  # px; 128 x 96 -> 16 x 12 = 192 patch tokens
    dim: int = 64  # token width
    depth: int = 4  # transformer blocks in the encoder
    heads: int = 4
    mlp_ratio: float = 2.0
    memory_slots: int = 16  # fixed-size state: memory_slots x dim floats, however long the video
    read_tokens: int = 4  # memory tokens read from the previous step's memory into the encoder's input
    embed_dim: int = 64  # re-identification / retrieval embedding width (L2-normalised)
    mask_channels: int = 8  # channels of the mask decoder
    mask_stride: int = 2  # the decoder runs at 1 / mask_stride of the input resolution (1 = full; 4x the cost)
    pose_frequencies: int = 6  # Fourier octaves of map-frame floor positions, base wavelength pose_base_m
    pose_base_m: float = 0.5  # shortest wavelength (m) of the floor-position encoding
    max_range_m: float = 25.0  # a viewing ray hitting the floor farther than this counts as "no floor"
    predict_k: int = 3  # the predictive head forecasts frame features this many steps ahead
    use_memory: bool = True  # False: the same network with the memory never read from nor written to
    # Place memory (model/place_memory.py): a place_cells x place_cells torus of floor cells, place_cell_m
    # apart, that each patch reads and writes at its floor point; 0 = none (the shipped model until it
    # earns its place: BENCHMARKS "A place memory").
    place_cells: int = 0
    place_cell_m: float = 0.25
    # The still camera's background (model/background.py) as a second input picture beside the frame, with a
    # flag saying whether there is one (BENCHMARKS "What the network keys on"); the shipped model has it, for its
    # still head.
    background: bool = False
    background_skips_changes: bool = False  # the background leaves out what changed (model/background.py)
    # channels of the still camera's change head (model/still_head.py: a correction from the frame against the
    # background, zero without one); 0 = none. Needs background.
    still_head: int = 0

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the patch grid."""
        return self.image_height // self.patch_size, self.image_width // self.patch_size

    @property
    def num_patches(self) -> int:
        rows, cols = self.grid
        return rows * cols

    @property
    def input_channels(self) -> int:
        """The patch embedding's input: the frame (3), plus the background (3) and its flag (1) if used."""
        return 7 if self.background else 3

    @property
    def floor_period_m(self) -> float:
        """A shift of the map's x or y by a multiple of this leaves every floor feature as it was: the longest
        Fourier wavelength; 0 with a place memory (its torus of cells need not divide by it)."""
        return 0.0 if self.place_cells else self.pose_base_m * 2.0 ** (self.pose_frequencies - 1)

    @property
    def pose_features(self) -> int:
        """Width of a patch's raw pose feature: ray (3) + floor flag (1) + log range (1) + Fourier(x, y)."""
        return 5 + 4 * self.pose_frequencies

    def validate(self) -> ModelConfig:
        """Raise ValueError naming the setting to change; return self."""
        for f in dataclasses.fields(self):  # NaN passes every "<= 0" check below (a checkpoint's pose_base_m NaN
            value = getattr(self, f.name)   # loaded and made the memory NaN at the first frame)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        if self.image_width % self.patch_size or self.image_height % self.patch_size:
            raise ValueError(
                f"image_width and image_height ({self.image_width}x{self.image_height}) must be multiples "
                f"of patch_size ({self.patch_size})"
            )
        if self.patch_size % self.mask_stride:
            raise ValueError(f"patch_size ({self.patch_size}) must be a multiple of mask_stride ({self.mask_stride})")
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        positive = ("patch_size", "dim", "depth", "heads", "memory_slots", "read_tokens", "embed_dim",
                    "mask_channels", "mask_stride", "pose_frequencies", "predict_k")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pose_base_m <= 0 or self.max_range_m <= 0 or self.mlp_ratio <= 0 or self.place_cell_m <= 0:
            raise ValueError("pose_base_m, max_range_m, mlp_ratio and place_cell_m must be > 0")
        if self.place_cells < 0:
            raise ValueError(f"place_cells must be >= 0 (0 = no place memory), got {self.place_cells}")
        if self.still_head < 0 or (self.still_head and not self.background):
            raise ValueError("still_head must be >= 0 and needs background (the picture it compares with)")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from to_dict(); unknown keys raise ValueError (a checkpoint from a newer version)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model settings {unknown}: the checkpoint is from another version")
        return cls(**data).validate()


# A larger configuration for GPU training (`spatial-memory train --large`); not meant for the CPU target.
LARGE = ModelConfig(image_width=192, image_height=144, dim=192, depth=6, heads=6, memory_slots=32,
                    read_tokens=8, embed_dim=128, mask_channels=16)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults are run 1 of scripts/train_shipped.sh (the shipped file had 1,200 steps)."""

    # optimizer steps (one per lane chunk). 2,400 since 2026-12-07: at 1,200 four of six draws of the recipe failed
    # a validation run, at 2,400 one of four (BENCHMARKS "Twice the steps", "The remake is another network")
    steps: int = 2400
    batch: int = 8  # lanes: streams walked in parallel
    clip: int = 8  # frames per chunk (the truncated-BPTT horizon)
    stream_frames: int = 200  # frames per training stream (20 s at 10 Hz)
    reuse: int = 2  # lanes that walk each stream (halves the rendering cost)
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 50
    seed: int = TRAIN_SEED_MIN  # first training stream's seed; also seeds the weights and dropouts
    checkpoint_every: int = 100
    workers: int = 1  # rendering processes (0 = render in this process)
    threads: int = 1  # torch CPU threads
    memory_dropout: float = 0.1  # chunks run with the memory disabled, so the ablation is in-distribution
    pose_dropout: float = 0.1  # lanes whose stream is walked without the camera pose
    # Time budget: the run saves and stops there, steps done or not (the checkpoint's meta records how many).
    # The learning rate follows the steps alone, so that a run does not depend on a machine's speed (its weights
    # are the same on one box, not across boxes: BENCHMARKS "The remake is another network"); on an idle 2-core
    # CPU the default steps end first (23-40 min: the speed of 2026-12-07's boxes), and --resume finishes a run the
    # budget cut short.
    time_limit_min: float = 55.0
    device: str = "auto"
    large: bool = False  # ModelConfig LARGE instead of the CPU default (meant for a GPU)
    # The place memory experiment (BENCHMARKS "A place memory"); the defaults are the shipped model's run.
    place_cells: int = 0  # ModelConfig.place_cells
    teleports: float = 0.0  # share of streams whose items vanish and reappear (model.data.training_preset)
    scene_weight: float = 0.0  # LossWeights.scene
    background: bool = False  # ModelConfig.background: the still camera's background as a second input
    background_skips_changes: bool = False  # ModelConfig.background_skips_changes
    recolour: float = 0.0  # share of streams with random agent colours and palette (model.appearance)
    # that share for patrolling cameras' streams (None = recolour): they have no still background to compare
    # with, and recolouring them cost det F1 there (BENCHMARKS "What the network keys on")
    recolour_patrol: float | None = None
    # share of streams whose racks and furniture (the floor's footprints) are painted in the agents' colours
    # (model.data.decoy_preset): the network found agents by colour and took orange racks for them (BENCHMARKS
    # "The depot"); here colour alone cannot tell what moves
    decoys: float = 0.0
    # share of streams whose floor takes a random look (model.data.varied_floor): tint, stains, grain, tiles, line
    # colour. With decoys alone the network took the depot's unseen floor texture for agents (BENCHMARKS "Racks in
    # the agents' colours, continued"): two floors are too few to learn that a floor's look does not move. Not in
    # the shipped recipe: with decoys it solved the orange racks but marked more of the depot (BENCHMARKS "... and
    # floors of many looks")
    floors: float = 0.0
    init: str = ""  # start from this model file's weights (modules it lacks start fresh); "" = from scratch
    # with init: weight of a loss keeping the change mask near the init model's wherever that model is at home
    # (streams not recoloured, frames without a still background): learning without forgetting, so that a
    # fine-tune for the still camera does not cost the patrol (BENCHMARKS "A fine-tune anchored to the shipped model")
    anchor: float = 0.0
    # LossWeights.edge: weight of the unchanged band around each change, on frames with a still background
    # (all frames for a model without the background input)
    edge_weight: float = 0.0
    # share of streams cut from photographs (model.photo_stream: still cameras, real textures) instead of the
    # simulator, for real footage, where the simulator-trained network marks next to nothing
    photos: float = 0.0
    still_head: int = 0  # ModelConfig.still_head (needs background)
    # train only the still head: the rest keeps the --init weights exactly, so a moving camera's output is theirs
    freeze_base: bool = False
    # decay of an exponential moving average of the weights, which the model file then holds (the state file keeps
    # the raw weights the optimizer steps); 0 = off, the file holds the last step's weights (the shipped recipe).
    # The average smooths the last few hundred steps' wander, which draws of one recipe differ by (BENCHMARKS
    # "Draws of one recipe, averaged")
    ema: float = 0.0

    def validate(self) -> TrainConfig:
        for f in dataclasses.fields(self):  # NaN passes every "< 0" check below
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        if self.seed < TRAIN_SEED_MIN:
            raise ValueError(f"--seed must be >= {TRAIN_SEED_MIN}: seeds 0-199 are tests and the benchmark")
        for name in ("steps", "batch", "clip", "stream_frames", "reuse", "checkpoint_every", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.stream_frames < self.clip:
            raise ValueError("stream_frames must be >= clip")
        if self.workers < 0:  # -1 rendered in this process, as 0 does, without a word
            raise ValueError("workers must be >= 0 (0 = render in this process)")
        if self.reuse > 2:  # a third walk of a stream came right beside the second: the same frames in two lanes,
            # an exact copy of each positive among InfoNCE's negatives and one object as two for re-id
            raise ValueError("reuse must be 1 or 2")
        if not 0.0 <= self.teleports <= 1.0 or self.scene_weight < 0 or self.place_cells < 0:
            raise ValueError("teleports must be in [0, 1], scene_weight and place_cells >= 0")
        if not 0.0 <= self.recolour <= 1.0 or not 0.0 <= (self.recolour_patrol or 0.0) <= 1.0:
            raise ValueError("recolour and recolour_patrol must be in [0, 1]")
        if self.still_head < 0 or (self.still_head and not self.background):
            raise ValueError("still_head must be >= 0 and needs background (the picture it compares with)")
        if self.freeze_base and not (self.still_head and self.init):
            raise ValueError("freeze_base needs still_head (what learns) and init (what stays)")
        for name in ("photos", "decoys", "floors"):  # shares of the training streams
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.edge_weight < 0:
            raise ValueError("edge_weight must be >= 0")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("ema must be in [0, 1) (0 = off)")
        if self.anchor < 0 or (self.anchor > 0 and not self.init):
            raise ValueError("anchor must be >= 0 and needs init (the model to stay near)")
        if not self.time_limit_min > 0:
            raise ValueError("time_limit must be > 0 minutes")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be > 0 and finite, got {self.lr}")
        return self
