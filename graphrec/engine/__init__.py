"""The request-time engine: the facade (engine.py) and its parts, one job each."""
