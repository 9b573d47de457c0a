"""RankerTrainer: LightGBM LambdaMART over the engine's retrieval candidates, TRAIN-split judged queries only.

Features come from the engine's own candidate path (dense, BM25, two-tower scores, category/colour match,
price = Transform's price_log_z that IndexBuilder stored per item, popularity, cold-start flag); labels are the
judged grades. With the learned fusion, only the TRAIN queries held out of its training pairs
(``fusion.learned.ranker_holdout``, ``modules.search.fusion.ranker_queries``) and the photo queries are used: the
fusion's scores on the queries it fitted are memorised. Early stopping watches a by-query
validation slice carved from the train queries (modules/search/rerank_train.py). Eval queries are never read here.

With the two-tower model (``two_tower``, optional) and ``ranking.user_queries.enabled``, the TRAIN-split user-issued
queries of the interaction log (modules/evaluation/user_queries.py) join the judged ones, each with its user's
two-tower scores, so the ranker learns the ``two_tower`` feature (0 on the judged, user-less queries).
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import logging
import os

from tfx.types.standard_artifacts import Examples, Model

from components.common import SERVING_SUBDIR, local_dirs, params_and_seed, read_queries, record_output
from components.tfx_types import InputArtifact, OutputArtifact, Parameter, component

log = logging.getLogger(__name__)


@component
def RankerTrainer(  # noqa: N802
    search_engine: InputArtifact[Model],
    queries: InputArtifact[Examples],
    ranker: OutputArtifact[Model],
    data_dir: Parameter[str],
    params_json: Parameter[str] = "",
    two_tower: InputArtifact[Model] = None,  # optional input
) -> None:
    """Train LambdaMART on the train queries and save it to ``ranker.uri/Format-Serving``."""
    import mlflow
    from modules.encoders.text_runtime import served_query_encoder
    from modules.evaluation.user_queries import personalised_queries, user_query_settings
    from modules.search import SearchEngine
    from modules.search.fusion import ranker_queries
    from modules.search.rerank_train import build_training_frame, train_ranker
    from modules.tracking import child_run, emissions

    params, seed = params_and_seed(params_json)
    train_queries = [q for q in read_queries(queries, "train") if q.get("source", "judged") == "judged"] or read_queries(
        queries, "train"
    )
    train_queries = ranker_queries(train_queries, params.get("fusion"), seed)   # none that trained the fusion
    staged = local_dirs({"data": data_dir, "engine": search_engine, "two_tower": two_tower}, {"ranker": ranker})
    with staged as local, child_run("training:ranker",
                                    params={f"ranking.{k}": v for k, v in params.get("ranking", {}).items()}):
        engine = SearchEngine.load(os.path.join(local["engine"], SERVING_SUBDIR), params=params,
                                   text_encoder=served_query_encoder(params))   # the query vectors serving will have
        contexts: dict = {}
        if two_tower is not None and user_query_settings(params).enabled:
            user_queries, contexts = personalised_queries(
                engine, local["data"], os.path.join(local["two_tower"], SERVING_SUBDIR), params, seed)
            train_queries += [q for q in user_queries if q["split"] == "train" and q["qid"] in contexts]
            log.info("RankerTrainer: %d user-issued train queries", sum(q["split"] == "train" for q in user_queries))
        X, y, groups, qids = build_training_frame(engine, train_queries, data_dir=local["data"],
                                                  progress=True, contexts=contexts)
        with emissions("ranker", os.path.join(local["ranker"], "codecarbon")) as em:
            model = train_ranker(X, y, groups, params=params, seed=seed, qids=qids)
        out = os.path.join(local["ranker"], SERVING_SUBDIR)
        model.save(out)
        info = dict(getattr(model, "info", {}) or {})
        metrics = {k: float(v) for k, v in info.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        metrics.update({"n_train_queries": len(set(qids)), "n_rows": len(X)})
        mlflow.log_metrics(metrics)
        importance = model.feature_importance()
        mlflow.log_dict(importance, "ranker_feature_importance.json")
        mlflow.log_artifacts(out, artifact_path="ranker")
    record_output(ranker, "train_info.json",
                  {"metrics": metrics, "feature_importance": importance, "emissions_kg": em.get("emissions_kg")},
                  ints={"n_train_queries": len(set(qids))})
    log.info("RankerTrainer: %d train queries, %d rows -> %s", len(set(qids)), len(X),
             os.path.join(ranker.uri, SERVING_SUBDIR))
