"""The draws' rule: is a newly trained network a candidate to replace the shipped one?

Training the same recipe again gives another network ("draw"), and draws differ more than recipes do: some mark
an unseen map's floor, some a trained map's (BENCHMARKS.md, "A second draw of the fixed predictive loss" and
later sections). So a draw is judged on the validation seeds (bench.seeds.VALIDATION_SEEDS), never on its loss
and never on the held-out benchmark, by a rule fixed before any draw was scored:

- (a) its mean change mIoU and (b) its mean IDF1 over the seven VALIDATION_RUNS are no more than MAX_DROP below
  the shipped network's, and
- (c) its det F1 is at least MIN_DEPOT_DET_F1 on every depot run (the one map no training stream uses).

Passing makes a candidate, not a shipped model: the held-out rows are rerun before anything ships.
``scripts/validate_draw.py`` runs the benches and prints this verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ValidationRun:
    preset: str
    camera: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.preset}_{self.camera}_{self.seed}"


@dataclass(frozen=True)
class Figures:
    """One run's learned-method figures: change mIoU, IDF1, det F1."""

    change_miou: float
    idf1: float
    det_f1: float


# Staged in this order on a slow box: the depot is where draws fail most, the patrols read run 1's network, the
# still cameras need the still head (run 2) too.
VALIDATION_RUNS: tuple[ValidationRun, ...] = (
    ValidationRun("depot", "patrol", 200),
    ValidationRun("depot", "patrol", 201),
    ValidationRun("depot", "patrol", 202),
    ValidationRun("warehouse", "patrol", 200),
    ValidationRun("home", "patrol", 200),
    ValidationRun("warehouse", "static", 200),
    ValidationRun("home", "static", 200),
)

# The shipped network's figures on those runs, 10 minutes, `--methods learned` (BENCHMARKS.md, "A second draw of
# the fixed predictive loss", shipped column; reproduced to the last digit on later boxes). Update them, with
# their section, whenever another network ships.
SHIPPED: Mapping[str, Figures] = {
    "depot_patrol_200": Figures(0.9690, 0.946, 0.952),
    "depot_patrol_201": Figures(0.9590, 0.925, 0.951),
    "depot_patrol_202": Figures(0.9726, 0.955, 0.956),
    "warehouse_patrol_200": Figures(0.9847, 0.967, 0.967),
    "home_patrol_200": Figures(0.9725, 0.845, 0.895),
    "warehouse_static_200": Figures(0.9991, 0.905, 0.961),
    "home_static_200": Figures(0.9707, 0.840, 0.944),
}
# The rule's means, as the section gives them from the unrounded figures (the rounded ones above give IDF1 0.9119).
SHIPPED_MEANS: Mapping[str, float] = {"change_miou": 0.9754, "idf1": 0.9121}
MAX_DROP = 0.01
MIN_DEPOT_DET_F1 = 0.90


@dataclass(frozen=True)
class Verdict:
    """passed: True or False once decided, None while runs the verdict needs are missing."""

    passed: bool | None
    reasons: tuple[str, ...]
    missing: tuple[str, ...]


def judge(figures: Mapping[str, Figures], reference: Mapping[str, float] = SHIPPED_MEANS) -> Verdict:
    """The rule's verdict on a draw's figures, keyed by ValidationRun.name; runs not yet scored may be absent.

    A failed depot run fails the draw at once (term (c) needs no other run); the means need all seven runs.
    Unknown run names are an error: a figure of another scene must not slip into the means.
    """
    names = [run.name for run in VALIDATION_RUNS]
    unknown = sorted(set(figures) - set(names))
    if unknown:
        raise ValueError(f"not validation runs of the rule: {', '.join(unknown)}")
    missing = tuple(n for n in names if n not in figures)
    reasons = [f"{n}: det F1 {f.det_f1:.3f} < {MIN_DEPOT_DET_F1}" for n, f in figures.items()
               if n.startswith("depot_") and f.det_f1 < MIN_DEPOT_DET_F1]
    if missing:
        return Verdict(False if reasons else None, tuple(reasons), missing)
    for label, key in (("change mIoU", "change_miou"), ("IDF1", "idf1")):
        mine = sum(getattr(figures[n], key) for n in names) / len(names)
        shipped = reference[key]
        if mine < shipped - MAX_DROP:
            reasons.append(f"mean {label} {mine:.4f} < shipped {shipped:.4f} - {MAX_DROP}")
    return Verdict(not reasons, tuple(reasons), ())
