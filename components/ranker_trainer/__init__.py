"""ranker_trainer component."""
