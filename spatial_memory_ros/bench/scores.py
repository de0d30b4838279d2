"""What every benchmark score shares: a frozen dataclass that turns into JSON-ready plain types."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Scores:
    """Base of the ``*Scores`` dataclasses."""

    def as_dict(self) -> dict[str, float | int | dict]:
        """Field name -> value, as plain Python numbers (json.dumps-able; NaN is written as NaN)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: object) -> float | int | dict:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bool | int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    raise TypeError(f"no JSON form for {type(value).__name__}")


def ratio(num: float, den: float) -> float:
    """num / den, 0.0 when den is 0 (nothing to score scores nothing)."""
    return float(num) / float(den) if den else 0.0
