"""REST API (FastAPI) for integrators, dispatchers and customs: registry, readings, alerts."""
