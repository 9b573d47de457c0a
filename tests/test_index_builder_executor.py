"""IndexBuilder's popularity (``modules.data.data_io.item_popularity``, the one home of the training-window cut):
training-window counts per item in catalog order (0 for new SKUs and unknown ids)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from modules.data.data_io import item_popularity as popularity


def test_popularity_counts_the_training_window(tmp_path: Path) -> None:
    assert not popularity(tmp_path, ["a", "b"]).any()  # no interactions.csv: a catalog without history
    pd.DataFrame({"user_id": ["u1", "u2", "u1", "u3", "u2", "u9"], "item_id": ["b", "b", "a", "b", "zz", "c"],
                  "event": "view", "ts": [1, 2, 3, 4, 5, 99]}).to_csv(tmp_path / "interactions.csv", index=False)
    (tmp_path / "manifest.json").write_text(json.dumps({"cutoff_ts": 50}))
    got = popularity(tmp_path, ["a", "b", "c", "new"])  # c's only view is after the cutoff
    assert got.dtype == np.float32 and got.tolist() == [1.0, 3.0, 0.0, 0.0]
