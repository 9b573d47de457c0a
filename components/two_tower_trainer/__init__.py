"""two_tower_trainer component."""
