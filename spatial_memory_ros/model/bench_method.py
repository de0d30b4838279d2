"""The learned model as benchmark methods: `spatial-memory bench --methods ...,learned,learned_no_memory`
(and learned_no_reid, learned_no_prior, learned_no_reader).

Both are the core Pipeline with the learned change backend in place of the classical one: change masks
from the model, dynamic-object tracks from the mask's regions through the same tracker, item memory
from the same tags. learned_no_memory is the same weights with the recurrent memory disabled (the
ablation); learned_no_reid tracks the moving regions without the model's re-identification embedding
(tracker.reid_motion off). Scored like the "pipeline" method (bench.methods.PipelineMethod); their config
says change.method learned, so tracker.min_hits auto confirms regions after LEARNED_MIN_HITS frames.
Their item memory answers with the learned return prior (memory.return_prior, core.return_prior) unless
return_prior=False (learned_no_prior, the ablation), and they read the tags the decoder gives up on with
the learned tag reader (detector.learned_tag_reader, model.tag_reader) unless tag_reader=False
(learned_no_reader). Their change masks add the floor memory's scene changes (change.floor_memory,
core.floor_change) and, while the camera stands still, have their edges set by a per-pixel background
model (change.still_edges, core.still_edges), unless floor_memory=False (learned_no_floor: the recurrent
memory alone, neither of these geometric ones); learned_no_memory has no memory at all.
"""

from __future__ import annotations

from dataclasses import replace

from ..bench.methods import PipelineMethod, with_tag_reader
from ..core.change_backend import wants_motion_appearance
from ..core.config import PipelineConfig
from ..core.item_memory import ItemMemory
from ..core.pipeline import Pipeline
from ..core.store import MemoryStore
from .runtime import LearnedChangeDetector


class LearnedMethod(PipelineMethod):
    """PipelineMethod with LearnedChangeDetector(use_memory=...) as the change backend.

    reid_motion: None = config's tracker.reid_motion; False = the ablation without the model's re-id looks.
    return_prior: memory.return_prior (True: the item memory's learned return prior; False: the ablation).
    tag_reader: detector.learned_tag_reader (True: on where config names items, the ids it reads; False: ablation).
    floor_memory: change.floor_memory and change.still_edges (True: as configured; False: the ablation with the
    network's recurrent memory but neither the floor memory nor the background model). use_memory=False turns
    every memory off. slot_memory=False: the ablation of the network's recurrent slots alone (runtime's
    slot_memory), every other memory kept.
    """

    def __init__(self, config: PipelineConfig, *, use_memory: bool = True, reid_motion: bool | None = None,
                 return_prior: bool = True, tag_reader: bool = True, floor_memory: bool = True,
                 slot_memory: bool = True, device: str = "auto") -> None:
        self.name = "learned" + ("" if use_memory else "_no_memory") + ("_no_reid" if reid_motion is False else "") \
            + ("" if return_prior else "_no_prior") + ("" if tag_reader else "_no_reader") \
            + ("" if floor_memory or not use_memory else "_no_floor") \
            + ("" if slot_memory or not use_memory else "_no_slots")
        config = with_tag_reader(config, tag_reader and bool(config.tags.items))  # it reads only known ids
        tracker = config.tracker
        if reid_motion is not None:
            tracker = replace(tracker, reid_motion=reid_motion)
        # change.method learned says what the backend below is, so that tracker.min_hits 0 (auto) resolves to
        # LEARNED_MIN_HITS as in a node configured for the learned model; a value set by hand is kept
        config = replace(config, tracker=tracker, change=replace(config.change, method="learned"),
                         memory=replace(config.memory, return_prior=return_prior))
        change = LearnedChangeDetector.from_change_config(
            config.change, device=device, use_memory=use_memory, motion_appearance=wants_motion_appearance(config),
            geometric_memory=floor_memory, slot_memory=slot_memory,
        )
        store = MemoryStore(config.memory.db_path)
        self.pipeline = Pipeline(config, ItemMemory(config.memory, store), change=change, device=device)
        self._shared_tags = None  # the "pipeline" method offers the frame's tags to the baselines
