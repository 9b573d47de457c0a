"""The regression baseline is the last blessed run of the SAME data (issue 20): the blessed_by_data.json ledger
first, then the Resolver's latest blessing only when its data fingerprint matches; new data has no baseline."""
from __future__ import annotations

import json
from pathlib import Path

from components.retrieval_evaluator import executor as X


class _Blessing:
    """The parts of an MLMD ModelBlessing artifact the executor reads."""

    def __init__(self, art_id: int, props: dict[str, str]) -> None:
        self.id, self.props = art_id, props

    def has_custom_property(self, name: str) -> bool:
        return name in self.props

    def get_string_custom_property(self, name: str) -> str:
        return self.props[name]


def _metrics(tmp: Path, name: str, mrr: float) -> str:
    path = tmp / name
    path.write_text(json.dumps({"hybrid+ltr": {"mrr": mrr}}))
    return str(path)


def test_ledger_matches_by_fingerprint_and_new_data_has_no_baseline(tmp_path: Path) -> None:
    ledger = str(tmp_path / X.LEDGER_FILE)
    assert X.read_ledger(ledger) == {}
    X.record_blessing(ledger, "aaa", {"metrics_uri": _metrics(tmp_path, "a.json", 0.8), "blessing_id": 7})
    X.record_blessing(ledger, "bbb", {"metrics_uri": _metrics(tmp_path, "b.json", 0.5)})
    assert set(X.read_ledger(ledger)) == {"aaa", "bbb"}
    # the synthetic demo (aaa) and the fashion sample (bbb) share a pipeline root: each meets its own baseline
    other_catalog = _Blessing(9, {"data_hash": "bbb", "metrics_uri": _metrics(tmp_path, "b.json", 0.5)})
    metrics, bid, note = X.baseline_metrics([other_catalog], "aaa", ledger)
    assert metrics == {"hybrid+ltr": {"mrr": 0.8}} and bid == 7 and "ledger" in note
    assert X.baseline_metrics([], "bbb", ledger)[0] == {"hybrid+ltr": {"mrr": 0.5}}
    # a catalog never blessed: no baseline, and the Resolver's blessing of another catalog is ignored
    metrics, bid, note = X.baseline_metrics([other_catalog], "ccc", ledger)
    assert metrics is None and bid is None
    assert note.startswith("first blessed run on this data") and "other data and is ignored" in note
    # a later blessing on the same data replaces the entry
    X.record_blessing(ledger, "aaa", {"metrics_uri": _metrics(tmp_path, "a2.json", 0.9)})
    assert X.baseline_metrics([], "aaa", ledger)[0] == {"hybrid+ltr": {"mrr": 0.9}}


def test_resolver_blessing_counts_only_for_the_same_data(tmp_path: Path) -> None:
    same = _Blessing(3, {"data_hash": "aaa", "metrics_uri": _metrics(tmp_path, "m.json", 0.7)})
    metrics, bid, note = X.baseline_metrics([same], "aaa", str(tmp_path / "none.json"))
    assert metrics == {"hybrid+ltr": {"mrr": 0.7}} and bid == 3 and "blessing 3" in note
    unmarked = _Blessing(4, {"metrics_uri": _metrics(tmp_path, "m.json", 0.7)})  # blessed before fingerprints
    assert X.baseline_metrics([unmarked], "aaa", "")[0] is None
    assert X.baseline_metrics([unmarked], "", "")[0] is not None  # no fingerprint given: the old behaviour
    assert X.baseline_metrics([], "aaa", "")[0] is None
