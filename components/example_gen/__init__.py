"""example_gen component."""
