"""How the floor memory (core.floor_change) compares and learns: its one config dataclass with the trade-offs and
checks, apart from the memory's code so that both read as one thing each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FloorChangeConfig:
    """How the floor memory compares and learns. Lengths in metres, colours in 0..255 BGR units."""

    cell_m: float = 0.05  # floor cell edge: ~1 px at 5 m for a 320 px wide 60 deg camera
    cells: int = 1024  # the torus side, in cells: the map repeats every cells * cell_m metres
    max_range_m: float = 16.0  # floor farther from the camera than this is never looked at
    # nor floor where a pixel spans more than this along the ray: reach = sqrt(footprint * f_px * height),
    # 6.4 m for a camera 1 m up at 320 px and 60 deg, 13.7 m for one 4.5 m up
    max_footprint_m: float = 0.15
    threshold: float = 25.0  # colour distance (Euclidean, after matching brightness) that is a change
    settle_s: float = 2.0  # a change is marked this long from first sight, then becomes the reference
    range_ratio: float = 2.0  # compare only with references seen from within this factor of the distance
    blend: float = 0.2  # per-frame pull of an unchanged cell's reference towards what is seen (light drift)
    max_changed_fraction: float = 0.3  # more of the compared floor than this changed at once: no evidence
    min_region_cells: int = 24  # connected changed cells fewer than this are noise (24 = 6 dm^2 at 5 cm)
    # a changed region nowhere this many cells across is not marked while the pose's measured error (std, deg)
    # is above thin_above_deg: that error leaves slivers one or two cells wide along long edges (a rug's border,
    # a wall's foot), while with a good pose (it measures 0.04-0.07 deg) a far board may show only in fragments.
    # 0 = off. Marking only: such cells still count as changed for learning
    min_region_width_cells: float = 3.0
    thin_above_deg: float = 0.15
    blur_px: float = 1.0  # Gaussian sigma applied to the image before warping (sampling noise, aliasing)
    compare_sigma_cells: float = 1.0  # Gaussian sigma, in cells, of both looks before they are compared
    work_width: int = 320  # wider images are shrunk to this width first (cost; the mask comes back full size)
    align: bool = True  # turn the pose so the memory's floor lies where the frame shows it (its rotation error)
    max_align_deg: float = 2.0  # a picture shift beyond this turn is not believed
    align_min_known: float = 0.3  # the share of the view the memory must know to align on
    # the pose error a comparison allows for (core.floor_pose): this rotation (deg) at the cell's distance plus
    # this shift (m); None: tolerance_sigmas times the rotation error the alignment's shifts measured (0
    # without align). A cell must then differ by more than its edges' contrast over that many cells
    pose_tolerance_deg: float | None = None
    pose_tolerance_m: float = 0.01
    max_shift_cells: float = 3.0  # floor the pose's error may move farther than this is not compared
    jitter_frames: float = 20.0  # frames over which the measured rotation error is averaged
    tolerance_sigmas: float = 2.0  # the measured error's stds allowed for (a frame's error is often over one)

    def validate(self) -> FloorChangeConfig:
        for name in ("cell_m", "max_range_m", "max_footprint_m", "threshold", "range_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"floor change {name} must be > 0")
        if self.cells < 16 or self.work_width < 16:
            raise ValueError("floor change cells and work_width must be >= 16")
        if not 0.0 <= self.blend <= 1.0 or not 0.0 < self.max_changed_fraction <= 1.0:
            raise ValueError("floor change blend must be in [0, 1] and max_changed_fraction in (0, 1]")
        if not ((self.pose_tolerance_deg is None or self.pose_tolerance_deg >= 0) and self.pose_tolerance_m >= 0
                and self.max_shift_cells > 0 and self.jitter_frames >= 1 and self.max_align_deg > 0
                and self.tolerance_sigmas >= 0):
            raise ValueError("floor change pose_tolerance_deg (or None), pose_tolerance_m, tolerance_sigmas >= 0; "
                             "max_shift_cells, max_align_deg > 0; jitter_frames >= 1")
        if (self.settle_s < 0 or self.min_region_cells < 1 or self.blur_px < 0 or self.compare_sigma_cells < 0
                or not self.min_region_width_cells >= 0 or not self.thin_above_deg >= 0):
            raise ValueError("floor change settle_s, blur_px, compare_sigma_cells, min_region_width_cells, "
                             "thin_above_deg >= 0; min_region_cells >= 1")
        if 2 * self.max_range_m >= self.cells * self.cell_m:
            raise ValueError("floor change max_range_m must be under half the map (cells * cell_m / 2)")
        return self
