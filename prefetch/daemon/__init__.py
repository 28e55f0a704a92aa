"""`prefetch daemon`: every schedule on its own time, one leader per database, every
daemon working the items of running runs, metrics and health over HTTP.

- `timing`: when schedules fire, which clinic day a firing is for (pure)
- `schedules`: the schedule set in force, reloaded only when valid
- `core`: the decisions (leadership, due runs, joining runs), clock passed in
- `runner`: the run use case with the daemon's collaborators
- `service`: APScheduler around the core
- `http`: /metrics and /health
- `wiring`: the daemon's composition from settings
"""
