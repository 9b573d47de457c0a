"""embedding_gen component."""
