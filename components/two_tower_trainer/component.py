"""TwoTowerTrainer: runs the TFRS two-tower module's ``run_fn`` (modules/recommend/two_tower.py).

The stock TFX Trainer cannot hand ``run_fn`` the URI of a custom input artifact (the item embeddings) next to
Transform's outputs for another table than the interactions (the transformed items and the transform graph),
so this component builds the same ``FnArgs`` the Trainer would (train/eval interaction files,
``serving_model_dir`` = ``model.uri/Format-Serving``, ``custom_config``) and calls ``run_fn`` unchanged.
The output is a standard ``Model`` artifact in TF Serving layout, tracked in MLflow with CodeCarbon.
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import glob
import importlib
import json
import logging
import os

from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.types.standard_artifacts import Examples, Model, TransformGraph

from components.artifacts import Embeddings
from components.common import SERVING_SUBDIR, local_dirs, params_from
from components.tfx_types import InputArtifact, OutputArtifact, Parameter, component
from modules.data.data_io import read_cutoff

log = logging.getLogger(__name__)
MODULE = "modules.recommend.two_tower"


@component
def TwoTowerTrainer(  # noqa: N802
    interactions: InputArtifact[Examples],
    embeddings: InputArtifact[Embeddings],
    transform_graph: InputArtifact[TransformGraph],
    transformed_items: InputArtifact[Examples],
    model: OutputArtifact[Model],
    data_dir: Parameter[str],
    params_json: Parameter[str] = "",
) -> None:
    """Train the two-tower recommender on the train interactions; early stopping watches the eval split. The
    candidate tower reads Transform's ``transform_graph`` and its transformed items (``transformed_examples``)."""
    from modules.tracking import child_run, emissions

    params = params_from(params_json)
    run_fn = importlib.import_module(MODULE).run_fn
    tt = params.get("recommend", {}).get("two_tower", {})
    staged = local_dirs({"data": data_dir, "interactions": interactions, "embeddings": embeddings,
                         "transform_graph": transform_graph, "transformed_items": transformed_items}, {"model": model})
    with staged as local:
        run_dir = os.path.join(local["model"], "model_run")
        fn_args = FnArgs(
            train_files=sorted(glob.glob(os.path.join(local["interactions"], "Split-train", "*"))),
            eval_files=sorted(glob.glob(os.path.join(local["interactions"], "Split-eval", "*"))),
            serving_model_dir=os.path.join(local["model"], SERVING_SUBDIR),
            model_run_dir=run_dir,
            custom_config={
                "items_csv": os.path.join(local["data"], "items.csv"),
                "embeddings_dir": local["embeddings"],
                "transform_graph": local["transform_graph"],
                "transformed_examples": local["transformed_items"],
                "cutoff_ts": read_cutoff(local["data"]),
                "params": params,
            },
        )
        with child_run("training:two_tower", params={f"two_tower.{k}": v for k, v in tt.items()}):
            with emissions("two_tower", os.path.join(local["model"], "codecarbon")) as em:
                run_fn(fn_args)
        with open(os.path.join(run_dir, "metrics.json")) as f:
            trained = json.load(f)
        serving_dir = os.path.join(model.uri, SERVING_SUBDIR)
        with open(os.path.join(local["model"], "train_info.json"), "w") as f:
            json.dump({"emissions_kg": em.get("emissions_kg", 0.0), "serving_model_dir": serving_dir}, f)
    log.info("TwoTowerTrainer: SavedModel at %s (emissions %.2e kg)", serving_dir, em.get("emissions_kg", 0.0))
    for key in ("n_train_examples", "batch_size", "epochs_run", "best_epoch"):  # shown in the progress line
        if key in trained:
            model.set_int_custom_property(key, int(trained[key]))
