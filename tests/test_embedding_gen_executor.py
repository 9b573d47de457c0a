"""EmbeddingGen logic: streamed photos, a parallel colour pass, the backbone + LiT image space, and bad photos
(unreadable ones make their item text-only and are counted; odd but valid ones are embedded)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from components.embedding_gen import executor
from modules.config import load_params
from modules.data import data_io
from modules.encoders.color import color_features_and_name
from modules.encoders.image_space import load_image_encoder


def _bad_photos(d: Path) -> dict[int, str]:
    """Six awkward photos a real catalog holds; returns row -> file name."""
    files = {6: "all_background.png", 7: "transparent.png", 8: "one_pixel.png", 9: "cmyk.jpg", 10: "grey.png",
             11: "sixteen_bit.png"}
    Image.new("RGB", (64, 64), (250, 250, 250)).save(d / files[6])
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(d / files[7])
    Image.new("RGB", (1, 1), (200, 30, 30)).save(d / files[8])
    cmyk = Image.new("CMYK", (64, 64), (0, 0, 0, 0))
    cmyk.paste((0, 200, 200, 0), (16, 16, 48, 48))  # red on white, in CMYK
    cmyk.save(d / files[9], "JPEG")
    grey = Image.new("L", (64, 64), 240)
    grey.paste(40, (16, 16, 48, 48))
    grey.save(d / files[10])
    arr = np.full((64, 64), 60000, np.uint16)
    arr[16:48, 16:48] = 8000
    buf = io.BytesIO()
    Image.fromarray(arr, "I;16").save(buf, "PNG")
    (d / files[11]).write_bytes(buf.getvalue())
    return files


def _catalog(d: Path, n: int = 40) -> None:
    colours = [(200, 30, 30), (30, 60, 200), (40, 160, 60), (230, 200, 40)]
    rows = []
    (d / "images").mkdir(parents=True)
    for i in range(n):
        img = Image.new("RGB", (64, 64), (250, 250, 250))
        img.paste(colours[i % 4], (16, 16, 48, 48))
        img.save(d / "images" / f"{i}.png")
        rows.append({"item_id": f"it{i}", "title": f"product {i} in colour {i % 4}", "category": "lamps",
                     "price": 10.0 + i, "image_path": f"images/{i}.png", "created_at": 100,
                     "description": "a lamp", "brand": "acme", "gender": "unisex"})
    rows[1]["image_path"] = ""  # no photo
    (d / "images" / "2.png").write_bytes(b"\x89PNG truncated")  # unreadable photo
    for row, name in _bad_photos(d / "images").items():
        rows[row]["image_path"] = f"images/{name}"
    pd.DataFrame(rows).to_csv(d / "items.csv", index=False)


def test_embeddings_with_two_workers_and_bad_photos(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    _catalog(data)
    params = load_params()
    params["encoders"]["color"] = {**params["encoders"]["color"], "workers": 2}
    params["encoders"]["lit"] = {**params["encoders"]["lit"], "max_epochs": 2}
    stats = executor.generate(str(data), str(out), params, seed=42)

    # the 1x1 photo is refused like the truncated one; every other awkward photo is embedded
    assert stats["n_items"] == 40 and stats["n_with_image"] == 37 and stats["n_photos_unusable"] == 2
    assert stats["image_kind"] == "backbone" and set(stats["seconds"]) >= {"text", "photo_pass", "photo_backbone",
                                                                          "lit_training", "attributes"}
    image = np.load(out / data_io.EMB_IMAGE_FILE)
    color = np.load(out / data_io.EMB_COLOR_FILE)
    names = json.loads((out / data_io.EMB_COLOR_NAMES_FILE).read_text())
    assert np.load(out / data_io.EMB_TEXT_FILE).shape == (40, 384) and image.shape == (40, stats["image_dim"])
    assert not image[[1, 2, 8]].any() and not color[[1, 2, 8]].any() and names[1] == names[2] == names[8] == ""
    ok = [i for i in range(40) if i not in (1, 2, 8)]
    assert np.allclose(np.linalg.norm(image[ok], axis=1), 1.0, atol=1e-5)
    assert names[9] == "red" and names[10] in ("black", "grey")  # CMYK and greyscale read as their colours
    # the spawned workers compute exactly what the in-process function does
    feats, name = color_features_and_name(Image.open(data / "images" / "5.png").convert("RGB"), params, seed=42)
    assert np.array_equal(color[5], feats) and names[5] == name == "blue"
    assert json.loads((out / data_io.EMB_IDS_FILE).read_text())[0] == "it0"
    # the cached frozen features and the saved encoder give the catalog's vectors back
    encoder = load_image_encoder(out / data_io.EMB_TOWER_DIR, params)
    assert np.allclose(encoder.encode_images([Image.open(data / "images" / "5.png").convert("RGB")])[0], image[5],
                       atol=1e-4)
    assert np.load(out / "backbone_features.npy").shape == (40, 1280)
    # the "same photo" fingerprints ride along: zeros where there is no readable photo, the function's value elsewhere
    from modules.encoders.fingerprint import photo_fingerprint

    grid = params["encoders"]["fingerprint"]["grid"]
    fingerprints = np.load(out / data_io.EMB_FINGERPRINTS_FILE)
    assert fingerprints.shape == (40, 3 * grid * grid) and fingerprints.dtype == np.uint8
    assert not fingerprints[[1, 2, 8]].any()
    assert np.array_equal(fingerprints[5], photo_fingerprint(Image.open(data / "images" / "5.png"), grid))
    assert json.loads((out / data_io.EMB_ATTRIBUTES_FILE).read_text())["metrics"] == {}  # no labelled columns
