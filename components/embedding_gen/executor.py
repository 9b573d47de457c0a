"""EmbeddingGen logic: SBERT text embeddings, colour features, the image space (frozen backbone + LiT text head by
default) and attributes learned from the catalog's own labels -- ``modules.search.build.embed_catalog``, the build
path ``pixelmatch benchmark`` uses too -- tracked as one MLflow child run with the image step's emissions."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def generate(data_dir: str, out_dir: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Write text.npy, image.npy, color.npy, item_ids.json, attributes.json and image_tower/; return stats."""
    import mlflow
    from modules.encoders.image_space import image_kind
    from modules.search.build import embed_catalog, save_embeddings
    from modules.tracking import child_run, emissions

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kind = image_kind(params)
    em: dict[str, float] = {}

    @contextlib.contextmanager
    def measured() -> Iterator[None]:  # the photo pass (colour too) + the image space
        with emissions(f"image_{kind}", out / "codecarbon") as measure:
            yield
        em.update(measure)

    with child_run(f"training:image_{kind}", params={"encoders.image.kind": kind}) as run:
        emb = embed_catalog(data_dir, params, seed, progress=True, image_stage=measured)
        attributes, seconds, n_with_image = emb.attributes, emb.seconds, int(emb.has_image.sum())
        mlflow.log_metrics({"n_items": len(emb.items), "n_with_image": n_with_image,
                            **{f"seconds.{k}": v for k, v in seconds.items()},
                            **{f"attribute.{c}.held_out_accuracy": m["held_out_accuracy"]
                               for c, m in attributes["metrics"].items()}})
        run_id = run.info.run_id
    save_embeddings(emb, out)
    history = getattr(emb.image_encoder, "history", []) or []
    return {
        "n_items": len(emb.items),
        "n_with_image": n_with_image,
        "n_photos_unusable": int(emb.n_photos - n_with_image),
        "text_dim": int(emb.text_emb.shape[1]),
        "image_dim": int(emb.image_emb.shape[1]),
        "image_kind": kind,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "text_seconds": round(seconds["text"], 2),
        "lit_epochs": len(history),
        "lit_best_val_loss": min((h["val_loss"] for h in history), default=None),
        "attributes": attributes["metrics"],
        "emissions_kg": em.get("emissions_kg", 0.0),
        "mlflow_run_id": run_id,
    }
