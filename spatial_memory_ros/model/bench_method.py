"""The learned model as benchmark methods: `spatial-memory bench --methods ...,learned,learned_no_memory`.

Both are the core Pipeline with the learned change backend in place of the classical one: change masks
from the model, dynamic-object tracks from the mask's regions through the same tracker, item memory
from the same tags. learned_no_memory is the same weights with the recurrent memory disabled (the
ablation). Scored like the "pipeline" method (bench.methods.PipelineMethod), with one tracker setting of
its own, LEARNED_MIN_HITS.
"""

from __future__ import annotations

from dataclasses import replace

from ..bench.methods import PipelineMethod
from ..core.config import PipelineConfig
from ..core.item_memory import ItemMemory
from ..core.pipeline import Pipeline, wants_motion_appearance
from ..core.store import MemoryStore
from .runtime import LearnedChangeDetector

# tracker.min_hits for the learned backend. Its mask makes almost no false regions (one false track box in
# 10 min of warehouse patrol train seed 1001), so a region's track can be confirmed a frame sooner than the
# classical pipeline's 3: on train seeds (warehouse 1001 and 1000, home 1001) det F1 rose 1.4-2.2 points,
# precision fell by at most 1.2, and HOTA, IDF1 and MOTA rose. Use tracker.min_hits 2 with change.method
# learned in the node too.
LEARNED_MIN_HITS = 2


class LearnedMethod(PipelineMethod):
    """PipelineMethod with LearnedChangeDetector(use_memory=...) as the change backend."""

    def __init__(self, config: PipelineConfig, *, use_memory: bool = True, device: str = "auto") -> None:
        self.name = "learned" if use_memory else "learned_no_memory"
        config = replace(config, tracker=replace(config.tracker, min_hits=LEARNED_MIN_HITS))
        change = LearnedChangeDetector(
            config.change.model_path or None, device=device, use_memory=use_memory,
            min_blob_area_px=config.change.min_blob_area_px, motion_appearance=wants_motion_appearance(config),
        )
        store = MemoryStore(config.memory.db_path)
        self.pipeline = Pipeline(config, ItemMemory(config.memory, store), change=change, device=device)
        self._shared_tags = None  # the "pipeline" method offers the frame's tags to the baselines
