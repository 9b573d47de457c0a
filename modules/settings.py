"""params.yaml as typed, frozen settings: one dataclass per section, checked key by key when loaded.

    s = load_settings()                     # params.yaml
    s = load_settings(params)               # a caller's params over params.yaml's (sections merged key by key)
    s.retrieval.hnsw.ef_search, s.serving.top_k_max, s.look.models.detector_classes["1"]

params.yaml is the only source of values: the dataclasses below declare names and types, never defaults. A key
params.yaml lacks, an unknown key or a value of the wrong type raises ``ValueError`` naming the dotted key
(``retrieval.hnsw.ef_search: expected int, got str``). An int is accepted (and stored as a float) where a float is
expected; a bool is never an int. Lists become tuples and free-form mappings read-only ``MappingProxyType``s.
A section given in ``params`` is merged over params.yaml's key by key; any other value (a list, a free-form
mapping such as ``rrf_weights``) replaces params.yaml's whole, as it does in :func:`load_section` and
:func:`section_dict` (one section, for callers that hold only that).
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modules.config import load_params, params_section

# A field params.yaml may leave out (commented there): None when absent. The only place a value is not from params.yaml.
OPTIONAL = {"optional": True}


# --- generate: the synthetic catalog (modules/data/catalog/) -----------------------------------------------------
@dataclass(frozen=True)
class GenerateSettings:
    scale: str                                   # tiny | small | full
    scales: Mapping[str, Mapping[str, int]]      # scale -> n_items, n_users, n_interactions, n_*_queries
    image_size: int
    image_format: str
    zipf_exponent: float
    color_in_title_rate: float
    new_sku_fraction: float
    query_eval_fraction: float
    workers: int
    start_ts: int                                # first interaction (unix seconds)
    history_days: int
    holdout_days: int                            # last days after cutoff_ts, held out for evaluation
    pattern_in_text_rate: float
    price_noise: float
    event_mix: Mapping[str, float]               # event type -> share
    user_candidates: int
    price_band_width: float
    cold_query_fraction: float
    max_grade3: int
    max_relevant: int
    png_compress_level: int
    render_chunk: int
    categories: tuple[str, ...] | None = field(metadata=OPTIONAL)  # commented out in params.yaml: all 12 categories


# --- ingest: `pixelmatch ingest` (modules/data/ingest.py, modules/data/selfsup.py) ---------------------------------
@dataclass(frozen=True)
class IngestSelfsupSettings:
    n_text_queries: int
    n_image_queries: int
    eval_fraction: float
    title_words_min: int
    title_words_max: int
    crop_min: float
    crop_max: float
    brightness_min: float
    brightness_max: float
    rotation_deg: float
    jpeg_quality: int


@dataclass(frozen=True)
class IngestSettings:
    max_image_side: int
    jpeg_quality: int
    max_image_pixels: int
    created_at: int                              # of rows without one
    default_category: str
    max_report_rows: int
    summary_reasons: int
    selfsup: IngestSelfsupSettings


# --- encoders ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextRuntimeSettings:
    kind: str                                    # onnx | tf
    precision: str                               # fp32 | int8 | int8_mixed
    threads: int


@dataclass(frozen=True)
class TextEncoderSettings:
    model: str
    max_seq_length: int
    batch_size: int
    query_cache_size: int                        # LRU entries of both query encoders (TF, ONNX); 0 disables
    runtime: TextRuntimeSettings


@dataclass(frozen=True)
class ImageEncoderSettings:
    kind: str                                    # backbone | tower | clip | color
    clip_model: str


@dataclass(frozen=True)
class BackboneSettings:
    model: str
    pca_dim: int | None                          # null keeps all 1,280 features
    pca_fit_rows: int
    workers: int
    threads: int


@dataclass(frozen=True)
class LitSettings:
    hidden_dim: int
    batch_size: int
    learning_rate: float
    temperature: float
    max_epochs: int
    patience: int
    min_delta: float
    val_fraction: float
    max_train_items: int | None                  # null: every item with a photo


@dataclass(frozen=True)
class TowerSettings:
    input_size: int
    embedding_dim: int
    epochs: int
    batch_size: int
    learning_rate: float
    temperature: float
    conv_filters: tuple[int, ...]
    hidden_dim: int
    use_color_features: bool
    augment_flip: bool
    augment_photo: float
    max_image_pixels: int
    max_train_items: int | None


@dataclass(frozen=True)
class ColorSettings:
    histogram_bins: tuple[int, ...]              # HSV bins
    sample_pixels: int
    texture_weight: float
    share_weight: float
    workers: int
    background_tolerance: float
    background_gap_closing: int
    edge_erosion: int
    chroma_gain: float
    chroma_cap: float
    black_point: float
    white_point: float
    achromatic_chroma: float
    black_lightness: float
    white_lightness: float
    second_colour_share: float
    skin_max_share: float
    skin_hue: tuple[float, ...]                  # CIE LCh ranges of skin tones
    skin_chroma: tuple[float, ...]
    skin_lightness: tuple[float, ...]


@dataclass(frozen=True)
class FingerprintSettings:
    grid: int                                    # RGB cells per side of a photo's "same photo" fingerprint


@dataclass(frozen=True)
class EncodersSettings:
    text: TextEncoderSettings
    image: ImageEncoderSettings
    backbone: BackboneSettings
    lit: LitSettings
    tower: TowerSettings
    color: ColorSettings
    fingerprint: FingerprintSettings


# --- attributes: fill empty categorical columns from the photos (modules/attributes.py) ----------------------------
@dataclass(frozen=True)
class AttributesSettings:
    columns: tuple[str, ...] | None              # null: every extra attribute column that qualifies
    max_classes: int
    min_labelled: int
    min_class_count: int
    holdout_fraction: float
    max_train_rows: int
    min_confidence: float
    color_weight: float
    C: float                                     # inverse L2 strength of the logistic regression
    max_iter: int


# --- fusion ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LearnedFusionSettings:
    hidden_dim: int
    epochs: int
    batch_size: int
    learning_rate: float
    temperature: float
    max_pairs: int
    ranker_holdout: float                        # TRAIN text queries kept out of the pairs for the re-ranker


@dataclass(frozen=True)
class FusionSettings:
    method: str                                  # concat | late | learned
    late_image_weight: float
    learned: LearnedFusionSettings


# --- retrieval ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HnswSettings:
    M: int
    ef_construction: int
    ef_search: int
    filter_exact_below: int                      # filters allowing <= this many rows are searched exactly


@dataclass(frozen=True)
class PhotoCategoryHeadSettings:
    augmented_photos: int                        # catalog photos augmented once each for the head's training
    holdout_fraction: float                      # of those, held out for the reported accuracy
    min_class_count: int                         # categories with fewer photos are left out
    C: float                                     # inverse L2 strength of the logistic regression
    max_iter: int


@dataclass(frozen=True)
class PhotoSettings:
    tower_weight: float
    color_weight: float
    dominant_color_intent: bool
    crop_busy_scenes: bool
    crop_margin: float
    crop_percentile: float
    dominant_color_bonus: float
    duplicate_distance: float | None             # "same photo" candidates (fingerprint RMS below it) go first; null: off
    nearest_kept: int                            # a photo query's nearest catalog photos always kept as candidates
    category_confidence: float | None            # a photo query gets the head's category (list + boost) at least this sure; null: off
    category_head: PhotoCategoryHeadSettings


@dataclass(frozen=True)
class RrfTuningSettings:
    enabled: bool                                # tune the text queries' rrf_weights at index build
    values: tuple[float, ...]                    # weights each list may take
    rounds: int                                  # coordinate-ascent passes over the lists
    min_queries: int                             # fewer held-out TRAIN text queries: params.yaml's weights stay
    max_queries: int                             # seeded sample of at most this many
    min_gain: float                              # a move must raise mean NDCG@10 by more than this


@dataclass(frozen=True)
class RetrievalSettings:
    hnsw: HnswSettings
    candidates: int                              # per retriever before fusion
    rrf_k: int
    filter_overfetch: int                        # unused since issue 16 (kept for old bundles)
    intent_boost: float
    low_confidence_threshold: float | None       # null: calibrated at index build
    low_confidence_calibration_queries: int
    max_query_chars: int                         # longer queries are truncated
    fresh_days: int                              # freshness intents: products added within this many days
    composed_image_weight: float
    rerank_depth: int | None                     # best hybrid candidates given features + the re-ranker (null: all)
    rrf_weights: Mapping[str, float]             # text queries: list name -> RRF weight, missing = 1
    photo_rrf_weights: Mapping[str, float]
    composed_rrf_weights: Mapping[str, float]
    rrf_tuning: RrfTuningSettings                # rrf_weights tuned on the catalog (modules.search.rrf_tuning)
    photo: PhotoSettings


# --- ranking -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserQuerySettings:
    enabled: bool
    min_history: int
    max_per_user: int
    extra_columns: tuple[str, ...]
    extra_prob: float
    grades: Mapping[str, int]                    # event type -> relevance grade
    eval_fraction: float
    max_train: int


@dataclass(frozen=True)
class RankingSettings:
    num_leaves: int
    learning_rate: float
    n_estimators: int
    early_stopping_rounds: int
    min_data_in_leaf: int
    eval_at: tuple[int, ...]
    valid_fraction: float
    min_validation_gain: float
    min_intent_queries: int                      # LambdaMARTRanker.knows_intents
    feature_fraction: float
    bagging_fraction: float
    n_jobs: int
    user_queries: UserQuerySettings


# --- recommend ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TwoTowerSettings:
    embedding_dim: int
    id_embedding_dim: int
    attribute_embedding_dim: int
    hidden_dim: int
    epochs: int
    batch_size: int
    max_batch_size: int
    min_steps_per_epoch: int
    eval_batch_size: int
    learning_rate: float
    temperature: float
    history_len: int
    logq_correction: bool
    id_dropout: float
    eval_fraction: float
    eval_k: int
    max_eval_examples: int
    early_stopping_patience: int


@dataclass(frozen=True)
class AlsSettings:
    factors: int
    iterations: int
    regularization: float
    alpha: float
    content_projection_l2: float
    num_threads: int


@dataclass(frozen=True)
class ContentRecommendSettings:
    text_weight: float
    image_weight: float
    color_weight: float
    attribute_weight: float
    history_len: int


@dataclass(frozen=True)
class TasteSettings:
    max_cardinality: int
    smoothing: float
    fit_users: int
    fit_negatives: int
    regularization_c: float


@dataclass(frozen=True)
class HybridRecommendSettings:
    collaborative: str                           # two_tower | als
    warm_interactions: int
    max_collab_weight: float
    cold_context_weight: float
    session_weight: float                        # share of the fresh (POST /events) session in a known user's score
    new_arrival_slots: int                       # top-k places reserved for new arrivals (0: off)
    new_arrival_days: int


@dataclass(frozen=True)
class RecommendSettings:
    event_weights: Mapping[str, float]           # event type -> confidence
    n_price_bands: int
    exclude_purchased: bool
    two_tower: TwoTowerSettings
    als: AlsSettings
    content: ContentRecommendSettings
    hybrid: HybridRecommendSettings
    taste: TasteSettings


# --- evaluation --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationSelfsupSettings:
    text_margin_over_bm25: float
    dense_min_share_of_bm25: float
    photo_min_mrr: float
    photo_min_recall: float


@dataclass(frozen=True)
class EvaluationSettings:
    k: int
    bless_margin_over_bm25: float
    regression_tolerance: float
    selfsup: EvaluationSelfsupSettings
    sample_queries_per_kind: int                 # 0 = all
    bootstrap_samples: int
    ci_level: float


# --- serving -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureStoreSettings:
    repo_path: str
    lookup: str                                  # auto | on | off
    features: tuple[str, ...]                    # empty disables the lookup
    rename: Mapping[str, str]                    # Feast feature name -> user_features key
    timeout_ms: float
    write_timeout_ms: float


@dataclass(frozen=True)
class EventsSettings:
    max_clock_skew_s: float
    max_id_chars: int


@dataclass(frozen=True)
class TfServingSettings:
    model: str
    signature: str
    timeout_s: float


@dataclass(frozen=True)
class ServingSettings:
    max_upload_mb: float
    max_image_pixels: int
    top_k_max: int
    watch_interval_s: float                      # 0 disables the LATEST watcher
    latency_window: int
    recommend_top_k_default: int
    feature_store: FeatureStoreSettings
    events: EventsSettings
    tf_serving: TfServingSettings
    min_image_side: int
    max_concurrent_decodes: int
    max_json_body_kb: float
    max_admin_body_mb: float
    max_item_attributes: int
    max_image_base64_mb: float
    fallback_versions: int
    keep_alive_s: float
    worker_healthcheck_s: int
    math_threads: int                            # BLAS/OpenMP threads per server process; 0: library default
    malloc_arenas: int                           # glibc malloc arenas per server process; 0: glibc's default
    request_threads: int                         # threads running sync routes per process; 0: anyio's 40


# --- pipeline ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KubeflowSettings:
    image: str
    beam_runner: str
    beam_args: tuple[str, ...]
    has_interactions: str | bool                 # auto | true | false


@dataclass(frozen=True)
class PipelineSettings:
    name: str
    root: str
    serving_dir: str
    beam_args: tuple[str, ...]
    feature_repo: str
    two_tower: bool
    time_budget_s: Mapping[str, float]           # budget group -> seconds (bench.pipeline_times --budget)
    codecarbon_country: str
    kubeflow: KubeflowSettings


# --- look: shop the look (modules/look/) --------------------------------------------------------------------------
@dataclass(frozen=True)
class LookModelsSettings:
    enabled: bool
    threads: int
    detector_min_score: float
    detector_classes: Mapping[str, str]          # COCO id (a string) -> class name
    pose_min_score: float
    pose_min_person: float
    pose_margin: float
    shoe_size: float


@dataclass(frozen=True)
class LookSalientSettings:
    border: float
    fg_threshold: float
    fg_mad_factor: float
    blur: float
    n_colors: int
    merge_color_dist: float
    close_px: int
    kmeans_iters: int
    max_fit_pixels: int
    full_size_frac: float


@dataclass(frozen=True)
class LookGenerateSettings:
    n_looks: int
    width: int
    height: int
    room_fraction: float
    accessory_rate: float


@dataclass(frozen=True)
class LookSettings:
    work_side: int
    max_regions: int
    top_k_default: int
    crop_margin: float
    nms_iou: float
    min_region_frac: float
    mode: str                                    # auto | models | salient
    warm_up_at_start: bool
    models: LookModelsSettings
    salient: LookSalientSettings
    generate: LookGenerateSettings


# --- the root ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    seed: int
    generate: GenerateSettings
    ingest: IngestSettings
    encoders: EncodersSettings
    attributes: AttributesSettings
    fusion: FusionSettings
    retrieval: RetrievalSettings
    ranking: RankingSettings
    recommend: RecommendSettings
    evaluation: EvaluationSettings
    serving: ServingSettings
    pipeline: PipelineSettings
    look: LookSettings


# --- loading -----------------------------------------------------------------------------------------------------
def load_settings(params: Mapping[str, Any] | None = None) -> Settings:
    """params.yaml (or ``params`` over it, sections merged key by key) as checked, frozen :class:`Settings`."""
    base = load_params(None)
    merged = _merge(base, params, Settings, "") if params is not None else base
    return _build(Settings, merged, "")


def load_section(path: str, values: Mapping[str, Any] | None = None) -> Any:
    """The typed section at dotted ``path`` (``"fusion"``, ``"encoders.tower"``) with ``values`` over params.yaml's
    (sub-sections merged key by key), for a caller that holds one section: a component's sub-dict, an engine's
    stored settings. ``values`` None: params.yaml's section as it is."""
    return _walk(load_settings(_nest(path, values)), path)


def section_dict(path: str, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:func:`load_section`'s merged values as a plain dict (JSON-ready, exactly as given or as params.yaml writes
    them), checked the same way: what a bundle stores so that it loads the same after params.yaml changes."""
    merged = merge_section(path, values)
    load_section(path, merged)                   # refuse unknown, missing or wrong-typed keys
    return merged


def merge_section(path: str, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``values`` over params.yaml's section at ``path`` as a plain dict, not yet checked: for a caller that runs
    its own checks (with its own messages) first and :func:`load_section` after."""
    return _merge(params_section(path), values, _walk_type(path), path)


def _nest(path: str, values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    for name in reversed(path.split(".")):
        values = {name: values}
    return dict(values)


def _walk(node: Any, path: str) -> Any:
    for name in path.split("."):
        node = getattr(node, name)
    return node


def _walk_type(path: str) -> type:
    cls: Any = Settings
    for name in path.split("."):
        cls = _hints(cls)[name]
    return cls


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _merge(base: Mapping[str, Any], given: Any, cls: type, where: str) -> dict[str, Any]:
    """``given`` over ``base`` for the section ``cls``: sub-sections recursively, any other value replaces."""
    if given is None:            # an empty YAML section (`pipeline:` with every key commented) overrides nothing
        return dict(base)
    if not isinstance(given, Mapping):
        raise ValueError(f"{where or 'params'}: expected a mapping, got {type(given).__name__}")
    hints = _hints(cls)
    out = dict(base)
    for key, value in given.items():
        tp = hints.get(key)
        if _is_section(tp) and isinstance(base.get(key), Mapping):
            out[key] = _merge(base[key], value, tp, _dotted(where, key))
        else:
            out[key] = value
    return out


def _dotted(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where or 'params'}: expected a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [str(k) for k in data if k not in fields]
    if unknown:
        raise ValueError(f"{_dotted(where, unknown[0])}: unknown key (known: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        key = _dotted(where, name)
        if name not in data:
            if f.metadata.get("optional"):
                values[name] = None
                continue
            raise ValueError(f"{key}: missing (params.yaml has no value for it)")
        values[name] = _convert(hints[name], data[name], key)
    return cls(**values)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if typing.get_origin(tp) is tuple:
        return f"a list of {_type_name(args[0])}"
    if typing.get_origin(tp) is Mapping:
        return f"a mapping of {_type_name(args[1])}"
    return "a mapping" if _is_section(tp) else tp.__name__


def _convert(tp: Any, value: Any, key: str) -> Any:
    """``value`` checked against ``tp`` (and made immutable); ValueError naming ``key`` when it does not fit."""
    wrong = ValueError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__}")
    if isinstance(tp, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _convert(option, value, key)
            except ValueError:
                continue
        raise wrong
    if _is_section(tp):
        return _build(tp, value, key)
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise wrong
        return tuple(_convert(typing.get_args(tp)[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, Mapping):
            raise wrong
        key_tp, value_tp = typing.get_args(tp)
        return types.MappingProxyType({_convert(key_tp, k, _dotted(key, k)): _convert(value_tp, v, _dotted(key, k))
                                       for k, v in value.items()})
    if tp is type(None):
        if value is None:
            return None
        raise wrong
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise wrong
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise wrong
    if tp is str:
        if isinstance(value, str):
            return value
        raise wrong
    raise TypeError(f"{key}: unsupported field type {tp!r}")  # a declaration error in this module, not in params


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a settings dataclass (resolving them costs more than a merge; they never change)."""
    return typing.get_type_hints(cls)
