"""EmbeddingGen logic: streamed photos, a parallel colour pass, unreadable photos made text-only."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from components.embedding_gen import executor
from modules import data_io
from modules.config import load_params
from modules.encoders.color import color_features_and_name


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
    pd.DataFrame(rows).to_csv(d / "items.csv", index=False)


def test_streamed_embeddings_with_two_colour_workers(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    _catalog(data)
    params = load_params()
    params["encoders"]["tower"] = {**params["encoders"]["tower"], "epochs": 1, "input_size": 32,
                                   "conv_filters": [8, 16], "hidden_dim": 64, "augment_photo": 0.0}
    params["encoders"]["color"] = {**params["encoders"]["color"], "workers": 2}
    stats = executor.generate(str(data), str(out), params, seed=42)

    assert stats["n_items"] == 40 and stats["n_with_image"] == 38
    image = np.load(out / data_io.EMB_IMAGE_FILE)
    color = np.load(out / data_io.EMB_COLOR_FILE)
    names = json.loads((out / data_io.EMB_COLOR_NAMES_FILE).read_text())
    assert np.load(out / data_io.EMB_TEXT_FILE).shape == (40, 384) and image.shape == (40, 384)
    assert not image[[1, 2]].any() and not color[[1, 2]].any() and names[1] == names[2] == ""
    assert np.allclose(np.linalg.norm(image[3:], axis=1), 1.0, atol=1e-5)
    # the spawned workers compute exactly what the in-process function does
    feats, name = color_features_and_name(Image.open(data / "images" / "5.png").convert("RGB"), params, seed=42)
    assert np.array_equal(color[5], feats) and names[5] == name == "blue"
    assert json.loads((out / data_io.EMB_IDS_FILE).read_text())[0] == "it0"
