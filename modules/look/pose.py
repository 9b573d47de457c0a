"""Garment regions from pose keypoints: person, top (shoulders to hips), bottom (hips to ankles), dress (shoulders
to knees), shoes (around the ankles)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modules.look.models import KEYPOINTS
from modules.look.regions import Region

_K = {name: i for i, name in enumerate(KEYPOINTS)}


def _span(kp: np.ndarray, names: list[str], min_score: float) -> np.ndarray | None:
    pts = np.array([kp[_K[n], :2] for n in names if kp[_K[n], 2] >= min_score])
    return pts if len(pts) else None


def _box(pts: np.ndarray, mx: float, my_top: float, my_bottom: float) -> tuple[float, float, float, float]:
    return (float(pts[:, 0].min() - mx), float(pts[:, 1].min() - my_top), float(pts[:, 0].max() + mx),
            float(pts[:, 1].max() + my_bottom))


def pose_regions(kp: np.ndarray, cfg: Mapping[str, Any]) -> list[Region]:
    """Regions from (17, 3) keypoints (x, y, score) in pixels; [] when the shoulders and hips are not seen."""
    thr = float(cfg["pose_min_score"])
    torso = [_K[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    person_conf = float(np.mean(kp[torso, 2]))
    if person_conf < float(cfg["pose_min_person"]) or min(kp[torso, 2]) < thr:
        return []
    shoulder_w = max(abs(kp[_K["left_shoulder"], 0] - kp[_K["right_shoulder"], 0]), 1.0)
    m = float(cfg["pose_margin"]) * shoulder_w * 2
    out = []
    top = _span(kp, ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_hip", "right_hip"], thr)
    out.append(Region(_box(top, m, m, m * 0.5), "top", round(person_conf, 3), "pose"))
    legs = _span(kp, ["left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"], thr)
    if legs is not None and legs[:, 1].max() - legs[:, 1].min() > shoulder_w * 0.5:
        conf = float(np.mean(kp[[_K["left_knee"], _K["right_knee"]], 2]))
        out.append(Region(_box(legs, m, 0.0, m * 0.5), "bottom", round(conf, 3), "pose"))
    long = _span(kp, ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_knee", "right_knee"], thr)
    if long is not None and long[:, 1].max() - long[:, 1].min() > shoulder_w * 1.5:   # a dress or a long coat
        out.append(Region(_box(long, m, m, m), "dress", round(0.8 * person_conf, 3), "pose"))
    feet = _span(kp, ["left_ankle", "right_ankle"], thr)
    if feet is not None:
        s = float(cfg["shoe_size"]) * shoulder_w
        conf = float(np.mean(kp[[_K["left_ankle"], _K["right_ankle"]], 2]))
        out.append(Region(_box(feet, s * 0.8, s * 0.3, s * 0.7), "shoes", round(conf, 3), "pose"))
    body = _span(kp, KEYPOINTS, thr)
    out.append(Region(_box(body, m, m * 2, m), "person", round(person_conf, 3), "pose"))
    return out


def detector_regions(dets: list[tuple[int, float, tuple[float, float, float, float]]],
                     cfg: Mapping[str, Any]) -> list[Region]:
    """SSD boxes of the configured COCO classes at or above the minimum score."""
    classes = {int(k): str(v) for k, v in (cfg.get("detector_classes") or {}).items()}
    thr = float(cfg["detector_min_score"])
    return [Region(box, classes[c], round(s, 3), "detector") for c, s, box in dets if c in classes and s >= thr]
