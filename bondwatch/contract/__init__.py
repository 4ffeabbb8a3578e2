"""The external contract (topics, payloads, limits) as code, shared by ingest, edge and simulators."""
