"""Traceability (源头可溯、去向可查): a tag's whole story, as a timeline and as an EPCIS 2.0 document.

- :mod:`api.trace.timeline` assembles the story from the database (the one implementation, shared by
  ``GET /api/v1/trace/{epc}`` and ``bondwatch trace``);
- :mod:`api.trace.epcis` maps a story to an EPCIS 2.0 JSON-LD document (pure, no I/O);
- :mod:`api.trace.console` prints a story in the terminal.

See docs/traceability.md.
"""
