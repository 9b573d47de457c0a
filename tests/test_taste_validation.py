"""bench.taste_validation: the pseudo cold-start split stays inside the training window and candidates are copies."""
from __future__ import annotations

import numpy as np
import pytest

from bench.taste_validation import pseudo_cutoff, with_setting


def test_pseudo_cutoff_leaves_the_last_fraction_of_events() -> None:
    ts = np.arange(1000)
    cut = pseudo_cutoff(ts, 0.25)
    assert (ts >= cut).mean() == pytest.approx(0.25, abs=0.002)
    assert cut < ts.max()


def test_with_setting_copies_and_refuses_unknown_keys() -> None:
    params = {"recommend": {"taste": {"smoothing": 0.2}}}
    changed = with_setting(params, "recommend.taste.smoothing", 1.0)
    assert changed["recommend"]["taste"]["smoothing"] == 1.0 and params["recommend"]["taste"]["smoothing"] == 0.2
    with pytest.raises(SystemExit, match="no recommend.taste.smothing"):
        with_setting(params, "recommend.taste.smothing", 1.0)
