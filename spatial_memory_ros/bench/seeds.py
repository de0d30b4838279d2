"""Which scene seeds are for what, so that nothing is ever tuned on the benchmark.

- 0-99 (TEST_SEEDS): unit tests, the demo and examples;
- 100-199 (BENCH_SEEDS): the benchmark (`spatial-memory bench`), held out: never train or tune on them;
- 200-299 (VALIDATION_SEEDS): choosing between trained models (which one ships): the benchmark's presets,
  never trained on, and not the benchmark, whose numbers a choice made on them would flatter;
- >= 1000 (TRAIN_SEED_MIN): training and tuning (the learned model, parameter searches, ablations).
300-999 are unassigned. A seed only picks the random parts of a preset (traffic, moves, lights), so the
same preset with disjoint seeds gives disjoint sequences of the same kind of scene.
"""

from __future__ import annotations

TEST_SEEDS = range(0, 100)
BENCH_SEEDS = range(100, 200)
VALIDATION_SEEDS = range(200, 300)
TRAIN_SEED_MIN = 1000


def seed_role(seed: int) -> str:
    """"test", "bench", "validation", "train" or "unassigned" for a scene seed."""
    if seed in TEST_SEEDS:
        return "test"
    if seed in BENCH_SEEDS:
        return "bench"
    if seed in VALIDATION_SEEDS:
        return "validation"
    if seed >= TRAIN_SEED_MIN:
        return "train"
    return "unassigned"
