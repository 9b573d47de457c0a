"""Region boxes: the `Region` record, IoU, non-maximum suppression and box scaling."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Region:
    """A proposed product region: box (x0, y0, x1, y1) in pixels, a label, a confidence in [0, 1] and its source
    (pose, detector or salient)."""

    box: tuple[float, float, float, float]
    label: str
    confidence: float
    source: str
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Share of box `a` that lies inside box `b`."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return ix * iy / area if area > 0 else 0.0


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return (min(max(0.0, x0), width), min(max(0.0, y0), height), min(max(0.0, x1), width), min(max(0.0, y1), height))


def scale_region(region: Region, factor: float, width: int, height: int) -> Region:
    """The region with its box multiplied by `factor` and clipped to a width x height photo."""
    box = clip_box([v * factor for v in region.box], width, height)
    return replace(region, box=tuple(round(v, 1) for v in box))


def nms(regions: Sequence[Region], iou_threshold: float) -> list[Region]:
    """Most confident first; a region overlapping a kept one above `iou_threshold` is dropped, except that pose
    regions never drop each other (a top and a dress overlap by design: either may be what the person wears)."""
    kept: list[Region] = []
    for r in sorted(regions, key=lambda r: -r.confidence):
        if all(iou(r.box, k.box) <= iou_threshold or r.source == k.source == "pose" for k in kept):
            kept.append(r)
    return kept
