"""Behaviour traces of the session machines (docs/protocol-traces.json)."""
