"""`prefetch demo`: a realistic clinic day against the simulator, end to end."""
