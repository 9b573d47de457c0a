"""EmbeddingGen's photo pass: one decode per photo gives exactly what the separate colour and backbone passes gave
(each decoding the photo on its own), in this process and over spawned workers; map_photos keeps the order; the
"same photo" fingerprints come from the same decode."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from modules.config import load_params
from modules.data.images import map_photos
from modules.encoders.backbone import features_for_paths
from modules.encoders.color import color_features_for_paths
from modules.encoders.fingerprint import photo_fingerprint
from modules.encoders.photo_pass import photo_pass


def _photos(d: Path, n: int = 10) -> list[Path | None]:
    rng = np.random.default_rng(5)
    paths: list[Path | None] = []
    for i in range(n):
        img = Image.new("RGB", (96 + 8 * i, 80), tuple(int(v) for v in rng.integers(200, 256, 3)))
        img.paste(tuple(int(v) for v in rng.integers(0, 256, 3)), (20, 16, 70, 64))
        paths.append(d / f"{i}.{'jpg' if i % 2 else 'png'}")
        img.save(paths[-1])
    (d / "bad.png").write_bytes(b"\x89PNG truncated")
    return paths[:3] + [None, d / "bad.png"] + paths[3:]


def _suffix(path: str, tail: str) -> str:
    return path[-5:] + tail


def test_map_photos_keeps_the_order_in_process_and_in_workers() -> None:
    paths = [f"/x/{i:04d}.png" for i in range(12)]
    job = partial(_suffix, tail="!")
    expected = [p[-5:] + "!" for p in paths]
    assert list(map_photos(job, paths, workers=1, progress=False)) == expected
    assert list(map_photos(job, paths, workers=2, chunksize=2, progress=False)) == expected


def test_one_decode_gives_what_the_two_passes_gave(tmp_path: Path) -> None:
    params = load_params()
    paths = _photos(tmp_path)
    real = [str(p) for p in paths if p is not None]
    lim = dict(max_pixels=int(params["serving"]["max_image_pixels"]), min_side=int(params["serving"]["min_image_side"]))
    colour, names, ok = color_features_for_paths(real, params, seed=42, workers=1, progress=False, **lim)
    feats, ok_bb = features_for_paths(real, "efficientnet_lite3", workers=1, progress=False, **lim)
    assert np.array_equal(ok, ok_bb) and ok.sum() == len(real) - 1
    rows = [i for i, p in enumerate(paths) if p is not None]
    for workers in (1, 2):
        got = photo_pass(paths, params, 42, backbone="efficientnet_lite3", workers=workers, progress=False,
                         chunksize=2)
        assert got.readable.tolist() == [p is not None and p.name != "bad.png" for p in paths]
        assert np.array_equal(got.color[rows], colour) and [got.names[i] for i in rows] == names
        assert np.array_equal(got.backbone[rows], feats)  # bit for bit, also from the spawned workers
        assert not got.color[3].any() and got.names[3] == "" and not got.backbone[3].any()
    colour_only = photo_pass(paths, params, 42, workers=1, progress=False)
    assert colour_only.backbone is None and np.array_equal(colour_only.color[rows], colour)


def test_the_pass_fingerprints_every_readable_photo(tmp_path: Path) -> None:
    params = load_params()
    grid = int(params["encoders"]["fingerprint"]["grid"])
    paths = _photos(tmp_path)
    got = photo_pass(paths, params, 42, workers=1, progress=False)
    assert got.fingerprints.shape == (len(paths), 3 * grid * grid) and got.fingerprints.dtype == np.uint8
    for i, p in enumerate(paths):
        if got.readable[i]:
            assert np.array_equal(got.fingerprints[i], photo_fingerprint(Image.open(p), grid))
        else:   # no photo (row 3), unreadable (row 4): no fingerprint
            assert not got.fingerprints[i].any()
    assert not got.readable[3] and not got.readable[4] and got.readable.sum() == len(paths) - 2
