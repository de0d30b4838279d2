"""The pictures of a benchmark run: metrics.png (bars), map.png (top-down items), samples.png (masks).

matplotlib with the Agg backend (no display needed); samples.png is plain OpenCV on the frames.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import matplotlib
import numpy as np

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from ..sim import ScenePreset  # noqa: E402
from ..viz import contact_sheet, draw_caption, overlay_mask  # noqa: E402
from .report import columns  # noqa: E402
from .samples import Sample  # noqa: E402

TRUTH_BGR = (0, 200, 0)
PRED_BGR = (0, 0, 255)
DPI = 100


def _det_f1_error(scores: dict[str, Any], headers: list[str], heights: list[float]) -> np.ndarray:
    """(2, N) bar error (below, above) for plot_metrics: det F1's 95 % interval, NaN (no bar) elsewhere."""
    err = np.full((2, len(headers)), np.nan)
    tracking = scores.get("tracking") or {}
    low, high = tracking.get("det_f1_low"), tracking.get("det_f1_high")  # absent from older results.json
    if "det F1" in headers and low is not None and high is not None:
        i = headers.index("det F1")
        err[:, i] = [heights[i] - low, high - heights[i]]
    return err


def plot_metrics(result_json: dict[str, Any], path: Path) -> None:
    """Grouped bars: one group per metric in [0, 1] (MOTA clipped at 0), one bar per method that has it, det F1
    with its 95 % interval as an error bar; a black line over layout and R@1 at the (seen) share (bench.ceiling),
    when the run has one."""
    cols = [(h, get) for h, get in columns(result_json) if h not in ("fps", "det F1 95%")]
    methods = list(result_json["methods"])
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * len(cols) + 2), 4.0), dpi=DPI)
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(cols))
    for k, name in enumerate(methods):
        scores = result_json["methods"][name]
        values = [get(scores) for _, get in cols]
        heights = [np.nan if not isinstance(v, float | int) or math.isnan(v) else max(v, 0.0) for v in values]
        xs = x + (k - (len(methods) - 1) / 2) * width
        bars = ax.bar(xs, heights, width, label=name, yerr=_det_f1_error(scores, [h for h, _ in cols], heights),
                      error_kw={"elinewidth": 1, "capsize": 2})
        for xi, h in zip(xs, heights):
            if h < 0.01:  # a (near) zero score is not a missing bar: mark it
                ax.text(xi, 0.005, "0", ha="center", va="bottom", fontsize=6, color=bars.patches[0].get_facecolor())
    seen = result_json.get("seen")  # what the camera had shown: a black tick over layout and R@1
    if seen is not None:
        headers = [h for h, _ in cols]
        for header, share, n in (("layout acc", seen["layout"], seen["n_layout"]),
                                 ("R@1", seen["retrieval"], seen["n_retrieval"])):
            if header in headers and n:
                i = headers.index(header)
                ax.hlines(share, i - 0.45, i + 0.45, colors="black", linewidths=2,
                          label="(seen)" if header == "layout acc" else "_nolegend_")
    ax.set_xticks(x, [h for h, _ in cols], rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (higher is better)")
    b = result_json["benchmark"]
    ax.set_title(
        f"{b['preset']} / {b['camera']}, {b['minutes']:g} min, seed {b['seed']}: no bar = not done or not asked"
    )
    ax.legend(fontsize=8, ncols=len(methods) + (seen is not None))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_map(result_json: dict[str, Any], preset: ScenePreset, path: Path) -> None:
    """Top-down map, one panel per memory method: each item's true home and true position at the end,
    and the method's usual and current answer, joined to the truth they should match."""
    memories = [n for n, s in result_json["methods"].items() if s["layout"] is not None]
    if not memories:
        return
    x1, y1, x2, y2 = preset.floor.extent
    aspect = (y2 - y1) / max(x2 - x1, 1e-9)
    panel_w = 6.0
    fig, axes = plt.subplots(
        1, len(memories), figsize=(panel_w * len(memories), panel_w * aspect + 1.2), dpi=DPI, squeeze=False
    )
    items = result_json["items"]
    for ax, name in zip(axes[0], memories):
        _floor(ax, preset)
        for item, info in items.items():
            home, now = info["home"], info["true_position"]
            ax.plot(*home[:2], "s", ms=7, mfc="none", mec="green")
            if now is not None:
                ax.plot(*now[:2], "x", ms=7, color="black")
            answer = info["answers"].get(name)
            if answer is None:
                continue
            for key, marker, color, truth in (("usual", "o", "tab:green", home), ("current", "^", "tab:blue", now)):
                p = answer[key]
                if p is None:
                    continue
                ax.plot(*p[:2], marker, ms=5, color=color)
                if truth is not None:
                    ax.plot([p[0], truth[0]], [p[1], truth[1]], "-", lw=0.8, color=color, alpha=0.6)
            ax.annotate(item, home[:2], fontsize=6, xytext=(3, 3), textcoords="offset points")
        s = result_json["methods"][name]
        ax.set_title(
            f"{name}: layout acc {s['layout']['accuracy']:.2f}, R@1 {s['retrieval']['recall_at_1']:.2f}", fontsize=10
        )
        ax.set_xlim(x1 - 0.5, x2 + 0.5)
        ax.set_ylim(y1 - 0.5, y2 + 0.5)
        ax.set_aspect("equal")
        ax.set_xlabel("x m (map)")
        ax.set_ylabel("y m")
    handles = [
        plt.Line2D([], [], ls="", marker="s", mfc="none", mec="green", label="true home"),
        plt.Line2D([], [], ls="", marker="x", color="black", label="true position (end)"),
        plt.Line2D([], [], ls="", marker="o", color="tab:green", label="usual (line to true home)"),
        plt.Line2D([], [], ls="", marker="^", color="tab:blue", label="current (line to true position)"),
        plt.Line2D([], [], ls="--", color="red", label="camera: patrol route, or mast and view direction"),
    ]
    fig.legend(handles=handles, loc="lower center", ncols=5, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def _floor(ax: Any, preset: ScenePreset) -> None:
    """Racks, furniture and rooms as grey outlines; the camera as a red route or point."""
    for fp in preset.floor.footprints:
        fx1, fy1, fx2, fy2 = fp.rect
        color = np.array(fp.color[::-1]) / 255.0  # BGR -> RGB
        ax.add_patch(Rectangle((fx1, fy1), fx2 - fx1, fy2 - fy1, fc=color, ec="grey", alpha=0.25, lw=0.5))
    cam = preset.camera
    if cam.mode == "patrol":
        route = np.array([*cam.route, cam.route[0]])
        ax.plot(route[:, 0], route[:, 1], "--", lw=0.8, color="red", alpha=0.5)
    else:
        ax.plot([cam.position[0], cam.look_at[0]], [cam.position[1], cam.look_at[1]], "-", color="red", lw=1)
        ax.plot(*cam.position[:2], "o", color="red", ms=5)


def _panel(image: np.ndarray, mask: np.ndarray | None, boxes: np.ndarray | None, color: tuple[int, int, int],
           caption: str) -> np.ndarray:
    out = image.copy()
    if mask is not None:
        overlay_mask(out, mask, color, alpha=0.45)
    for b in [] if boxes is None else boxes:
        x1, y1, x2, y2 = (int(round(v)) for v in b)
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 0), 1)
    return draw_caption(out, caption)


def plot_samples(samples: list[Sample], path: Path, *, cell_width: int = 240) -> None:
    """One row per kept frame: the truth (green mask, cyan agent boxes), then each change method's mask
    (red) with its scored dynamic tracks (cyan), side by side. Cells are shrunk (INTER_AREA averages the
    sensor noise away), which keeps the PNG a few hundred kB instead of megabytes."""
    if not samples:
        return
    names = sorted({n for s in samples for n in (*s.masks, *s.boxes)}, key=lambda n: (n not in samples[0].masks, n))
    cells = []
    for s in samples:
        cells.append(_panel(s.image, s.true_mask, s.true_boxes, TRUTH_BGR, f"truth t={s.stamp:.0f}s"))
        for n in names:
            cells.append(_panel(s.image, s.masks.get(n), s.boxes.get(n), PRED_BGR, n))
    sheet = contact_sheet(cells, 1 + len(names), cell_width=cell_width)
    if not cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {path}")
