"""Score a trained draw on the draws' rule's seven validation runs and print the verdict (bench/draw_rule.py).

    .venv/bin/python scripts/validate_draw.py OUT/spatial_memory_model.pt [--still OUT/still.pt] [--out DIR]

The patrols read run 1's file (the positional argument), the still cameras the still head's (--still; without
it they are left for later, and the verdict waits for them). Runs go in the rule's order, depot first, two at a
time (a 2-core box), 10 minutes each with `--methods learned --jobs 1`; a run whose results.json exists is read,
not run again, so a stopped or staged validation goes on where it was. It stops after the depot runs if one
of them failed, unless --keep-going: the rule is decided then.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from spatial_memory_ros.bench.draw_rule import SHIPPED, VALIDATION_RUNS, Figures, ValidationRun, judge

MINUTES = 10


def _figures(results: Path) -> Figures:
    learned = json.loads(results.read_text())["methods"]["learned"]
    return Figures(change_miou=float(learned["change"]["miou"]), idf1=float(learned["tracking"]["idf1"]),
                   det_f1=float(learned["tracking"]["det_f1"]))


def _score(run: ValidationRun, model: Path, out: Path) -> Figures:
    folder = out / run.name
    results = folder / "results.json"
    if not results.exists():
        cmd = [sys.executable, "-m", "spatial_memory_ros.cli.main", "bench", "--preset", run.preset, "--camera",
               run.camera, "--seed", str(run.seed), "--minutes", str(MINUTES), "--methods", "learned", "--jobs",
               "1", "--model", str(model), "--out", str(folder)]
        print(f"{run.name}: running ({model})", flush=True)
        with open(out / f"{run.name}.log", "w") as log:
            subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return _figures(results)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="run 1's file: the patrols read it")
    p.add_argument("--still", type=Path, default=None, help="the still head's file: the still cameras read it")
    p.add_argument("--out", type=Path, default=None, help="bench folders and logs (default out/validate_<model>)")
    p.add_argument("--keep-going", action="store_true", help="run every run even after a failed depot run")
    args = p.parse_args()
    for f in (args.model, args.still):
        if f is not None and not f.is_file():
            p.error(f"no such model file: {f}")
    out = args.out or Path("out") / f"validate_{args.model.stem}"
    out.mkdir(parents=True, exist_ok=True)

    figures: dict[str, Figures] = {}
    stages = [[r for r in VALIDATION_RUNS if r.preset == "depot"],
              [r for r in VALIDATION_RUNS if r.preset != "depot" and r.camera == "patrol"],
              [r for r in VALIDATION_RUNS if r.camera == "static"]]
    for stage in stages:
        model = args.still if stage[0].camera == "static" else args.model
        if model is None:
            break
        with ThreadPoolExecutor(max_workers=2) as pool:
            for run, fig in zip(stage, pool.map(_score, stage, [model] * len(stage), [out] * len(stage))):
                figures[run.name] = fig
        if judge(figures).passed is False and not args.keep_going:
            break

    print(f"\n| validation run ({MINUTES} min) | change mIoU: shipped / draw | IDF1 | det F1 |")
    print("|---|---|---|---|")
    for name, fig in figures.items():
        ref = SHIPPED[name]
        print(f"| {name} | {ref.change_miou:.4f} / {fig.change_miou:.4f} | {ref.idf1:.3f} / {fig.idf1:.3f} "
              f"| {ref.det_f1:.3f} / {fig.det_f1:.3f} |")
    verdict = judge(figures)
    state = {True: "PASSES (a candidate: rerun the held-out rows)", False: "FAILS", None: "undecided"}[verdict.passed]
    print(f"\nverdict: {state}")
    for reason in verdict.reasons:
        print(f"  - {reason}")
    if verdict.missing:
        print(f"  not scored yet: {', '.join(verdict.missing)}")
    (out / "verdict.json").write_text(json.dumps({"passed": verdict.passed, "reasons": verdict.reasons,
                                                  "missing": verdict.missing,
                                                  "figures": {n: vars(f) for n, f in figures.items()}}, indent=1))


if __name__ == "__main__":
    main()
