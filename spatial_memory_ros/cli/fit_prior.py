"""`spatial-memory fit-return-prior`: fit the item memory's return prior on training scene scripts.

Only the scripts are used (where each item is put down when, the generator's truth), not rendered frames,
so a few hundred two-hour scenes take seconds. Seeds below the training range are refused: the benchmark's
held-out seeds must never shape what the memory answers.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

from ..core.errors import BadInputError

_PRESETS = ("warehouse", "home")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..core.return_prior import SHIPPED_PATH

    p.add_argument("--presets", default=",".join(_PRESETS),
                   help="comma-separated scenes whose stays are pooled into one curve (default warehouse,home)")
    p.add_argument("--seeds", default="1000-1199", metavar="FIRST-LAST",
                   help="training scene seeds, inclusive (>= 1000; default 1000-1199)")
    p.add_argument("--minutes", type=float, default=120.0, help="simulated minutes per scene (default 120)")
    p.add_argument("--step", type=float, default=10.0, metavar="S", help="grid of the stored curve, s (default 10)")
    p.add_argument("--out", type=Path, default=SHIPPED_PATH,
                   help="JSON to write (default: the one shipped in the package)")
    p.set_defaults(handler=run)


def parse_seeds(text: str) -> range:
    from ..bench.seeds import TRAIN_SEED_MIN

    first, _, last = text.partition("-")
    try:
        seeds = range(int(first), int(last or first) + 1)
    except ValueError:
        raise BadInputError(f"--seeds must be FIRST-LAST or one seed, got {text!r}") from None
    if len(seeds) == 0:
        raise BadInputError(f"--seeds {text}: LAST must be >= FIRST")
    if seeds.start < TRAIN_SEED_MIN:
        raise BadInputError(f"--seeds {text}: only training seeds (>= {TRAIN_SEED_MIN}) may be fitted on")
    return seeds


def fit(presets: list[str], seeds: range, minutes: float, step_s: float, command: str) -> dict[str, object]:
    """The fitted prior as JSON, with per-preset counts and medians in its meta."""
    from ..bench.scene import bench_preset
    from ..core.return_prior import fit_return_prior
    from ..sim.script import scene_script
    from ..sim.stays import displaced_stays

    stays: dict[str, list[tuple[float, bool]]] = {}
    for name in presets:
        preset = bench_preset(name, "patrol", minutes)  # the camera does not change the script
        stays[name] = [
            (s.duration_s, s.returned)
            for seed in seeds
            for s in displaced_stays(scene_script(preset, seed))
        ]
    none = [name for name, v in stays.items() if not any(r for _, r in v)]
    if none:
        raise BadInputError(f"no item goes back to its usual place in {', '.join(none)} over seeds "
                            f"{seeds.start}-{seeds.stop - 1} and {minutes:g} min: nothing to fit; give more "
                            "--seeds or --minutes")
    per_preset = {
        name: fit_return_prior([d for d, _ in v], [r for _, r in v], step_s=step_s).meta for name, v in stays.items()
    }
    pooled = [x for v in stays.values() for x in v]
    meta = {"command": command, "presets": presets, "seeds": f"{seeds.start}-{seeds.stop - 1}",
            "minutes": minutes, "per_preset": per_preset}
    prior = fit_return_prior([d for d, _ in pooled], [r for _, r in pooled], step_s=step_s, meta=meta)
    return prior.to_json()


def run(args: argparse.Namespace) -> int:
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in _PRESETS]
    if unknown or not presets:
        raise BadInputError(f"unknown presets {unknown}; choose from {', '.join(_PRESETS)}")
    if not (0 < args.minutes < math.inf and 0 < args.step < math.inf):
        raise BadInputError("--minutes and --step must be > 0")
    command = "spatial-memory " + shlex.join(sys.argv[1:])
    from ..io.outputs import check_writable

    check_writable(args.out, "--out file")  # before the fit, which takes a while
    data = fit(presets, parse_seeds(args.seeds), args.minutes, args.step, command)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    meta = data["meta"]
    assert isinstance(meta, dict)
    print(f"wrote {args.out}: {meta['stays']} stays, {meta['returns']} returns, median time away "
          f"{meta['median_s']} s; " + ", ".join(f"{k} median {v['median_s']} s" for k, v in meta["per_preset"].items()))
    return 0
