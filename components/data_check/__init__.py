"""data_check component."""
