"""A small ROS-free transform tree buffer, for installs without tf2_ros.

It holds what /tf and /tf_static carry (parent <- child transforms with stamps) and answers
``lookup(target, source, stamp)`` like tf2: the chain through the common ancestor, each link
interpolated at the stamp. Dynamic links are kept for ``cache_s`` seconds; static ones forever.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from .errors import SpatialMemoryError
from .geometry import interpolate, invert


class TransformUnavailable(SpatialMemoryError):
    """No transform between the frames at that time; the message says which link is missing."""


@dataclass
class _Link:
    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    transforms: list[np.ndarray] = field(default_factory=list)  # T_parent_child, (4, 4) each


class TransformBuffer:
    """Transform tree with interpolation.

    Args:
        cache_s: how long dynamic transforms are kept; lookups older than that fail.
        extrapolation_s: a lookup up to this far past the newest (or before the oldest) sample of a
            link uses that sample instead of failing. tf2 never extrapolates; a small allowance keeps a
            10 Hz camera usable with a TF publisher slightly behind it.
        jump_back_s: a link's sample older than its newest by more than this means the clock went back (a
            simulator restarted, a bag played again): the link's history starts again, as tf2's listener clears
            its buffer on a time jump. Kept, the two runs' samples were sorted into one history and a lookup
            interpolated between a pose of each.
    """

    def __init__(self, *, cache_s: float = 10.0, extrapolation_s: float = 0.05, jump_back_s: float = 1.0) -> None:
        self._cache_s = cache_s
        self._extrapolation_s = extrapolation_s
        self._jump_back_s = jump_back_s
        self._links: dict[str, _Link] = {}  # child frame -> link to its parent

    def add(self, parent: str, child: str, stamp: float, T_parent_child: np.ndarray, *, static: bool) -> None:
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child or parent == child:
            raise TransformUnavailable(f"bad transform {parent!r} <- {child!r}")
        link = self._links.get(child)
        if link is None or link.parent != parent or link.static != static:
            link = self._links[child] = _Link(parent, static)  # re-parenting replaces the history
        if static:
            link.stamps, link.transforms = [stamp], [T_parent_child]
            return
        if link.stamps and stamp < link.stamps[-1] - min(self._cache_s, self._jump_back_s):
            link.stamps, link.transforms = [], []  # the clock went back (jump_back_s)
        i = bisect.bisect_right(link.stamps, stamp)
        link.stamps.insert(i, stamp)
        link.transforms.insert(i, T_parent_child)
        cutoff = link.stamps[-1] - self._cache_s
        drop = bisect.bisect_left(link.stamps, cutoff)
        if drop:
            del link.stamps[:drop], link.transforms[:drop]

    def newest(self, child: str) -> float | None:
        """The newest stamp of the dynamic link to child, or None (no such link, or a static one)."""
        link = self._links.get(child.lstrip("/"))
        return link.stamps[-1] if link is not None and not link.static and link.stamps else None

    def frames(self) -> set[str]:
        return set(self._links) | {link.parent for link in self._links.values()}

    def lookup(self, target: str, source: str, stamp: float) -> np.ndarray:
        """T_target_source at ``stamp`` (s); raises TransformUnavailable."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return np.eye(4)
        up_source = self._chain_to_root(source)
        up_target = self._chain_to_root(target)
        target_ancestors = [f for f, _ in up_target] + [self._root(up_target, target)]
        source_ancestors = [f for f, _ in up_source] + [self._root(up_source, source)]
        common = next((f for f in source_ancestors if f in target_ancestors), None)
        if common is None:
            raise TransformUnavailable(
                f"{target!r} and {source!r} are not connected (known frames: {sorted(self.frames())})"
            )
        T_common_source = self._compose(up_source, common, stamp)
        T_common_target = self._compose(up_target, common, stamp)
        return invert(T_common_target) @ T_common_source

    def _chain_to_root(self, frame: str) -> list[tuple[str, _Link]]:
        chain, seen = [], set()
        while frame in self._links and frame not in seen:
            seen.add(frame)
            chain.append((frame, self._links[frame]))
            frame = self._links[frame].parent
        return chain

    @staticmethod
    def _root(chain: list[tuple[str, _Link]], frame: str) -> str:
        return chain[-1][1].parent if chain else frame

    def _compose(self, chain: list[tuple[str, _Link]], stop: str, stamp: float) -> np.ndarray:
        T = np.eye(4)  # T_stop_frame, built from the frame upwards
        for child, link in chain:
            if child == stop:
                break
            T = self._sample(child, link, stamp) @ T
        return T

    def _sample(self, child: str, link: _Link, stamp: float) -> np.ndarray:
        if link.static:
            return link.transforms[0]
        stamps = link.stamps
        if stamp <= stamps[0]:
            if stamps[0] - stamp <= self._extrapolation_s:
                return link.transforms[0]
        elif stamp >= stamps[-1]:
            if stamp - stamps[-1] <= self._extrapolation_s:
                return link.transforms[-1]
        else:
            i = bisect.bisect_right(stamps, stamp)
            t0, t1 = stamps[i - 1], stamps[i]
            alpha = 0.0 if t1 == t0 else (stamp - t0) / (t1 - t0)
            return interpolate(link.transforms[i - 1], link.transforms[i], alpha)
        raise TransformUnavailable(
            f"no transform {link.parent!r} <- {child!r} at t={stamp:.3f} s "
            f"(have {stamps[0]:.3f} .. {stamps[-1]:.3f} s)"
        )
