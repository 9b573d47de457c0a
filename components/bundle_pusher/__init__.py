"""bundle_pusher component."""
