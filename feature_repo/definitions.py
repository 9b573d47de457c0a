"""PixelMatch feature definitions: item and user entities over the Parquet tables the pipeline writes.

The tables live in ``data/`` next to this file (FeastPublisher writes them, then runs apply + materialize):
  data/item_features.parquet  item_id, embedding ([text; image], unit length), popularity, category, brand, price,
                              cold_start, has_image, event_timestamp
  data/user_features.parquet  user_id, recent_items (newest first), session_items ([]), recent_categories,
                              recent_colors, price_band, n_events, top_categories, top_brand, mean_price, last_event_ts, event_timestamp
The user view is fed two ways: materialised from that table at push time, and pushed through the push source
``user_events`` by the API's ``POST /events`` (one row per event, written to the online store at once). What each
field means, and how an event changes it: modules/recommend/online_features.py.
"""
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float32, Int64, String

DATA_DIR = Path(__file__).resolve().parent / "data"
# ttl 0: features never expire (they are a snapshot of the catalog/histories at publication time).
NO_TTL = timedelta(seconds=0)

item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.STRING, description="a catalog SKU")
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="a shopper")

item_source = FileSource(
    name="item_features_source",
    path=str(DATA_DIR / "item_features.parquet"),
    timestamp_field="event_timestamp",
)
user_source = FileSource(
    name="user_features_source",
    path=str(DATA_DIR / "user_features.parquet"),
    timestamp_field="event_timestamp",
)
# POST /events writes here (FeatureStore.push, online only); the batch source is what materialize reads.
user_events = PushSource(name="user_events", batch_source=user_source)

item_features = FeatureView(
    name="item_features",
    entities=[item],
    ttl=NO_TTL,
    schema=[
        Field(name="embedding", dtype=Array(Float32)),
        Field(name="popularity", dtype=Float32),
        Field(name="category", dtype=String),
        Field(name="brand", dtype=String),
        Field(name="price", dtype=Float32),
        Field(name="cold_start", dtype=Int64),
        Field(name="has_image", dtype=Int64),
    ],
    online=True,
    source=item_source,
    tags={"owner": "pipeline"},
)

user_features = FeatureView(
    name="user_features",
    entities=[user],
    ttl=NO_TTL,
    schema=[
        Field(name="recent_items", dtype=Array(String)),
        Field(name="session_items", dtype=Array(String)),
        Field(name="recent_categories", dtype=Array(String)),
        Field(name="recent_colors", dtype=Array(String)),
        Field(name="price_band", dtype=Int64),
        Field(name="n_events", dtype=Int64),
        Field(name="top_categories", dtype=Array(String)),
        Field(name="top_brand", dtype=String),
        Field(name="mean_price", dtype=Float32),
        Field(name="last_event_ts", dtype=Int64),
    ],
    online=True,
    source=user_events,
    tags={"owner": "pipeline"},
)
