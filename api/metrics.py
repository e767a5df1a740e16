"""Prometheus metrics of one API process (with several workers, scrape each, or put them behind a
per-process port; nothing here is shared between processes)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
REQUESTS = Counter("graphrec_requests_total", "GraphQL requests", ["operation", "status"], registry=REGISTRY)
LATENCY = Histogram("graphrec_request_seconds", "GraphQL request latency", ["operation"], registry=REGISTRY,
                    buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0))
STAGE = Histogram("graphrec_pipeline_stage_seconds", "Engine stage latency", ["stage"], registry=REGISTRY,
                  buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5))
CANDIDATES = Gauge("graphrec_candidates_total", "Candidates proposed per source since start", ["source"], registry=REGISTRY)
CACHE_HIT = Gauge("graphrec_cache_hit_ratio", "Cache hit ratio", ["cache"], registry=REGISTRY)
DEGRADED = Counter("graphrec_degraded_answers_total", "Answers given in degraded mode", ["reason"], registry=REGISTRY)
ERRORS = Counter("graphrec_errors_total", "Errors by GraphQL code", ["code"], registry=REGISTRY)
JOURNAL = Gauge("graphrec_journal_pending_bytes", "Interactions journalled and not yet replayed", registry=REGISTRY)
