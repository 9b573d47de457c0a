"""Data in: catalog tables and photos, ingest of a user's catalog, live deltas, self-supervised queries, and the
synthetic catalog generator (``catalog/``, which the engine never imports)."""
