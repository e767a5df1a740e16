"""Serving: the request-time engine (candidate sources, rank, rules, caches, writes) that the API calls."""
