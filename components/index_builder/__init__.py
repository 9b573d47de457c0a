"""index_builder component."""
