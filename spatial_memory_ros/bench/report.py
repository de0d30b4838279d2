"""The method x metric table (terminal and Markdown) and results.json of a benchmark run."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..io.outputs import json_text
from .runner import BenchResult

# (column header, how to read it from a method's scores); None where the method does not do that part.
Getter = Callable[[dict[str, Any]], float | str | None]


def _part(part: str, key: str) -> Getter:
    def get(s: dict[str, Any]) -> float | None:
        scores = s.get(part)
        if scores is None:
            return None
        if scores.get("n", 1) == 0:
            return math.nan  # nothing was asked (a short run)
        if part == "tracking" and scores.get("num_gt", 1) == 0 and scores.get("num_pred", 1) == 0:
            return math.nan  # nothing in view and nothing claimed: 0.000 read as a tracker that failed
        value = scores.get(key)  # None: not a number (written as null), or a score newer than that results.json
        return math.nan if value is None else value

    return get


def _det_f1_interval(s: dict[str, Any]) -> str | None:
    """det F1's 95 % interval as "low-high" (tracking_metrics: a block bootstrap); n/a where there is none."""
    scores = s.get("tracking")
    if scores is None:
        return None
    low, high = scores.get("det_f1_low"), scores.get("det_f1_high")  # absent from results.json before them
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "n/a"
    return f"{low:.3f}-{high:.3f}"


def _hard(s: dict[str, Any]) -> float | None:
    """R@1 over the queries that need a memory (metrics.RetrievalScores); NaN where none was asked."""
    scores = s.get("retrieval")
    if scores is None:
        return None
    return scores["recall_at_1_hard"] if scores.get("n_hard") else math.nan


def _bucket(label: str) -> Getter:
    def get(s: dict[str, Any]) -> float | None:
        r = s.get("retrieval")
        if r is None or label not in r["per_bucket"]:
            return None
        b = r["per_bucket"][label]
        return b["recall_at_1"] if b["n"] else math.nan  # nan: no query fell in this bucket

    return get


def columns(result_json: dict[str, Any]) -> list[tuple[str, Getter]]:
    """The table's columns; the retrieval buckets are the ones the run used."""
    labels: list[str] = []
    for s in result_json["methods"].values():
        if s.get("retrieval") is not None:
            labels = list(s["retrieval"]["per_bucket"])
            break
    return [
        ("det F1", _part("tracking", "det_f1")),
        ("det F1 95%", _det_f1_interval),
        ("HOTA", _part("tracking", "hota")),
        ("IDF1", _part("tracking", "idf1")),
        ("MOTA", _part("tracking", "mota")),
        ("chg mIoU", _part("change", "miou")),
        ("chg IoU", _part("change", "iou_changed")),  # the changed class alone: an empty mask gets ~0.49 mIoU
        ("chg F1", _part("change", "f1_changed")),
        ("chg rec agents", _part("change", "recall_agents")),  # changed pixels on an agent that the mask has
        ("chg rec scene", _part("change", "recall_scene")),  # those off every agent: items appeared, left or moved
        ("layout acc", _part("layout", "accuracy")),
        ("R@1", _part("retrieval", "recall_at_1")),
        ("R@1 hard", _hard),  # out of view and moved since first seen
        *[(f"R@1 {label}", _bucket(label)) for label in labels],
        ("fps", _part("cost", "fps")),
    ]


def _fmt(value: float | str | None, header: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.1f}" if header == "fps" else f"{value:.3f}"


def _share(value: float, n: int) -> float:
    return math.nan if n == 0 else value


def table_rows(result_json: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): one row per method, then "(seen)", the share of the layout and R@1 queries whose
    answer the camera had shown (bench.ceiling; runs with a memory method), then the whole bench process."""
    cols = columns(result_json)
    headers = ["method", *[h for h, _ in cols], "peak RSS MB", "growth MB/h"]
    rows = []
    for name, s in result_json["methods"].items():
        rows.append([name, *[_fmt(get(s), h) for h, get in cols], "-", "-"])
    seen = result_json.get("seen")  # absent from results.json written before it existed
    if seen is not None:
        shares = {"layout acc": _share(seen["layout"], seen["n_layout"]),
                  "R@1": _share(seen["retrieval"], seen["n_retrieval"])}
        if "n_retrieval_hard" in seen:  # absent from results.json written before it existed
            shares["R@1 hard"] = _share(seen["retrieval_hard"], seen["n_retrieval_hard"])
        rows.append(["(seen)", *[_fmt(shares.get(h), h) for h, _ in cols], "-", "-"])
    run = result_json["run"]
    process = ["(whole step)"] + ["-"] * (len(cols) - 1) + [_fmt(run["fps"], "fps")]
    process += [f"{run['peak_rss_mb']:.0f}", _fmt(run["growth_mb_per_hour"], "fps")]
    rows.append(process)
    return headers, rows


def format_table(result_json: dict[str, Any]) -> str:
    """Aligned plain-text table for the terminal."""
    headers, rows = table_rows(result_json)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_markdown(result_json: dict[str, Any]) -> str:
    """The same table in Markdown, for BENCHMARKS.md."""
    headers, rows = table_rows(result_json)
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def format_summary(result: BenchResult) -> str:
    """What the run was, the table, and where time and memory went."""
    c, run = result.config, result.run
    data = result.to_json()
    head = (
        f"{c.preset} / {c.camera} camera, {c.minutes:g} min ({result.frames} frames, {c.width}x{c.height}), "
        f"seed {c.seed} ({data['benchmark']['seed_role']}): {run['wall_s']:.0f} s wall, "
        f"{result.frames / max(run['wall_s'], 1e-9):.1f} frames/s overall"
    )
    if "cpus" in run:  # a shared machine's load changes every timing
        load = f"{run['load_avg_1min_start']:.1f} -> {run['load_avg_1min_end']:.1f}"
        head += f"; load average {load} on {run['cpus']} CPUs"
    notes = (
        "'-' = the method does not do this; n/a = no query (in that bucket), or no changed pixel of that kind. "
        "chg rec agents / scene: the share of the changed pixels on an agent / off every agent (items that "
        "appeared, left or moved: only a memory of the place tells those) that the mask has. "
        "(seen): the share of the queries "
        "whose answer the camera had shown (a ceiling on layout; R@1 can pass it by guessing returns). "
        "fps: the method's update() alone "
        "(no_memory and last_seen reuse the pipeline's decoded tags, so theirs leaves tag detection out); "
        f"whole step: rendering ({run['render']}), all methods and scoring. Peak RSS and growth are the whole "
        f"process's; growth includes the scorers' stored boxes ({run['scorer_boxes_mb']:.1f} MB in all)."
    )
    return "\n".join([head, "", format_table(data), "", notes])


def write_results(result: BenchResult, path: Path, extra: dict[str, Any] | None = None) -> None:
    """results.json: the run's settings, every method's scores, the items' final answers (+ extra facts)."""
    data = result.to_json()
    if extra:
        data["run"].update(extra)
    path.write_text(json_text(data), encoding="utf-8")
