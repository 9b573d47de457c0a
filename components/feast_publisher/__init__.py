"""feast_publisher component."""
