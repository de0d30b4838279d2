"""How likely a displaced item is to be back at its usual place, from how long it has been away.

In the simulated scenes (and in many real spaces) displaced items are put back: a tool is returned to its
rack, a mug to its shelf. The prior is an empirical survival curve S(t) = P(an item that arrived at a
place away from its usual one is not yet back there t seconds later), fitted by Kaplan-Meier to the stays
of the training scripts (`spatial-memory fit-return-prior`, seeds >= 1000 only) and shipped as
data/return_prior.json.

At query time the memory does not know when the item arrived, only when it first saw it there (arrived,
never earlier than the true arrival) and the latest time it knew the item was not back yet (its last
sighting there, or a later look at the usual place that found it empty). So it asks the conditional

    P(back) = 1 - S(now - arrived) / S(known_away - arrived)

("it has stayed at least known_away - arrived; how likely is it to have gone home by now"). Counting from
the first sighting rather than the unknown arrival makes the time away look shorter than it is, so errors
lean towards keeping the last sighting. A stay already longer than every training stay (S = 0 there) is
outside what the prior knows: P(back) = 0, the last sighting stands.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BadInputError

SHIPPED_PATH = Path(__file__).resolve().parent.parent / "data" / "return_prior.json"
FORMAT = "spatial_memory.return_prior/1"


# The stored curve's length: 1 s steps over 27 hours. The node loads the curve whole.
MAX_GRID_POINTS = 100_000


@dataclass(frozen=True)
class ReturnPrior:
    """S(t) on a regular grid: survival[k] = S(k * step_s), a right-continuous step function.

    Between grid points S is read at the grid point below (an over-estimate of S for a falling curve), which
    again leans towards the last sighting.
    """

    step_s: float
    survival: tuple[float, ...]  # (K,) non-increasing, survival[0] = 1; S = survival[-1] beyond the grid
    meta: dict[str, Any] = field(default_factory=dict)  # how it was made: command, seeds, counts

    def __post_init__(self) -> None:
        s = np.asarray(self.survival, dtype=np.float64)
        if not (self.step_s > 0 and len(s) >= 1 and np.all(np.isfinite(s))):
            raise BadInputError("return prior: step_s must be > 0 and survival finite, non-empty")
        if np.any(np.diff(s) > 1e-12) or s[0] > 1.0 + 1e-12 or s[-1] < 0.0:
            raise BadInputError("return prior: survival must fall from <= 1 to >= 0")

    def survival_at(self, t: float) -> float:
        """S(t); 1 for t <= 0 (nothing has come back before it left)."""
        if not t > 0:
            return 1.0
        k = min(int(math.floor(t / self.step_s)), len(self.survival) - 1)
        return float(self.survival[k])

    def p_back(self, away_s: float, known_away_s: float = 0.0) -> float:
        """P(back at the usual place) away_s after arriving, given it was still away known_away_s after."""
        if not math.isfinite(away_s) or away_s <= known_away_s:
            return 0.0
        stayed = self.survival_at(known_away_s)
        if stayed <= 0.0:
            return 0.0  # longer than any training stay: not the kind of move the prior describes
        return 1.0 - self.survival_at(away_s) / stayed

    def time_back(self, min_p: float, known_away_s: float = 0.0) -> float:
        """The shortest time away (s, on the grid) at which p_back exceeds min_p; inf if never."""
        start = max(int(math.floor(max(known_away_s, 0.0) / self.step_s)), 0)
        for k in range(start, len(self.survival)):
            t = max(k * self.step_s, known_away_s)
            if self.p_back(t + 1e-9, known_away_s) > min_p:
                return t
        return math.inf

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "step_s": self.step_s, "survival": [round(v, 6) for v in self.survival],
                "meta": self.meta}


def fit_return_prior(
    durations_s: Sequence[float], returned: Sequence[bool], *, step_s: float = 10.0, meta: dict[str, Any] | None = None
) -> ReturnPrior:
    """Kaplan-Meier S(t) from stays: duration (s from arrival to back home, or to the end of what is known)
    and whether it ended by the return (False: censored, e.g. moved on elsewhere or the script ended)."""
    d = np.asarray(durations_s, dtype=np.float64)
    r = np.asarray(returned, dtype=bool)
    if d.shape != r.shape or d.ndim != 1 or not np.any(r) or np.any(~np.isfinite(d)) or np.any(d < 0):
        raise BadInputError("fit_return_prior needs finite durations >= 0, one flag each, at least one return")
    if not 0 < step_s < math.inf:
        raise BadInputError(f"fit_return_prior: step_s must be > 0 and finite, got {step_s}")
    times = np.unique(d[r])
    points = float(times[-1]) / step_s + 1
    if points > MAX_GRID_POINTS:  # --step 1e-9 asked numpy for 6.6 TiB and ended in a MemoryError traceback
        raise BadInputError(f"a step of {step_s:g} s puts {points:.3g} points on the curve up to the longest stay "
                            f"({float(times[-1]):g} s); at most {MAX_GRID_POINTS}: use a step of at least "
                            f"{float(times[-1]) / (MAX_GRID_POINTS - 1):.3g} s")
    at_risk = np.array([np.count_nonzero(d >= t) for t in times])
    events = np.array([np.count_nonzero(d[r] == t) for t in times])
    km = np.cumprod(1.0 - events / at_risk)  # S just after each return time
    grid = np.arange(0.0, float(times[-1]) + step_s, step_s)
    idx = np.searchsorted(times, grid, side="right") - 1  # the last return at or before each grid time
    survival = np.where(idx >= 0, km[np.clip(idx, 0, None)], 1.0)
    info = {"stays": int(len(d)), "returns": int(r.sum()), "median_s": _median(times, km), **(meta or {})}
    return ReturnPrior(step_s, tuple(float(v) for v in survival), info)


def _median(times: np.ndarray, km: np.ndarray) -> float | None:
    below = np.nonzero(km <= 0.5)[0]
    return float(times[below[0]]) if len(below) else None


def load_return_prior(path: str | Path | None = None) -> ReturnPrior:
    """The prior in a JSON file written by fit-return-prior; None or "" = the one shipped in the package."""
    p = Path(path) if path else SHIPPED_PATH
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:  # missing, binary, or not JSON
        raise BadInputError(f"cannot read the return prior {p}: {e} (memory.return_prior_path; make one with "
                            "`spatial-memory fit-return-prior`)") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInputError(f"{p} is not a return prior (expected format {FORMAT!r})")
    try:
        return ReturnPrior(float(data["step_s"]), tuple(float(v) for v in data["survival"]), dict(data.get("meta", {})))
    except BadInputError as e:  # numbers that read but do not make a prior (ReturnPrior says which)
        raise BadInputError(f"{p}: {e}") from e
    except (KeyError, TypeError, ValueError) as e:  # a key missing, a number that is not one
        raise BadInputError(f"return prior {p} is damaged: {e!r} (make a new one with `spatial-memory "
                            "fit-return-prior`)") from e
