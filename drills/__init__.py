"""Fault drills: the platform and an edge agent as real processes under a steady simulated load, one fault
injected at a time, and at the end every reading the agent published counted against the database.

`python -m drills` (or `make drills`) runs them; docs/drills.md describes each drill and the last results.
"""
