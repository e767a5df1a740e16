"""Prometheus metrics of the API.

With several worker processes (`graphrec serve --workers N`, N > 1) ``PROMETHEUS_MULTIPROC_DIR``
is set before the workers start: every worker writes its samples to files there and ``/metrics``,
whichever worker answers, adds them all up (prometheus_client's multiprocess mode). Gauges say how
they combine: candidates are summed over live workers, the journal backlog is the max (one
journal per host; so is the dead-letter count), breaker states and cache hit ratios are reported per worker (``pid`` label)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
REQUESTS = Counter("graphrec_requests_total", "GraphQL requests", ["operation", "status"], registry=REGISTRY)
LATENCY = Histogram("graphrec_request_seconds", "GraphQL request latency", ["operation"], registry=REGISTRY,
                    buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0))
STAGE = Histogram("graphrec_pipeline_stage_seconds", "Engine stage latency", ["operation", "stage"], registry=REGISTRY,
                  buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5))
CANDIDATES = Gauge("graphrec_candidates_total", "Candidates proposed per source since start", ["source"], registry=REGISTRY,
                   multiprocess_mode="livesum")
CACHE_HIT = Gauge("graphrec_cache_hit_ratio", "Cache hit ratio", ["cache"], registry=REGISTRY, multiprocess_mode="liveall")
RESULT_CACHE = Counter("graphrec_result_cache_lookups_total", "Result-cache lookups of the engine, by operation and "
                       "result (hit: answered from the cache; miss: computed)", ["operation", "result"], registry=REGISTRY)
DEGRADED = Counter("graphrec_degraded_answers_total", "Answers given in degraded mode, once per reason (an answer "
                   "with two reasons counts under each)", ["operation", "reason"], registry=REGISTRY)
DEGRADED_RESPONSES = Counter("graphrec_degraded_responses_total", "Answers given in degraded mode, once per answer; "
                             "reason: the answer's reasons, sorted and comma-joined (e.g. neo4j,stale)",
                             ["operation", "reason"], registry=REGISTRY)
SHED = Counter("graphrec_requests_shed_total", "GraphQL requests refused with 503 (api.max_in_flight reached)",
               registry=REGISTRY)
NEO4J_SHED = Gauge("graphrec_neo4j_reads_shed_total", "Request-path Neo4j reads refused before they were sent since "
                   "start (engine.neo4j_request_reads, or the neighbour cache's bound, in flight): each one's answer "
                   "is degraded", registry=REGISTRY, multiprocess_mode="livesum")
ERRORS = Counter("graphrec_errors_total", "Errors by GraphQL code", ["code"], registry=REGISTRY)
GC_PAUSE = Histogram("graphrec_gc_pause_seconds", "Cyclic garbage collector runs (api.collector)", ["generation"],
                     registry=REGISTRY, buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1))
JOURNAL = Gauge("graphrec_journal_pending_bytes", "Interactions journalled and not yet replayed", registry=REGISTRY,
                multiprocess_mode="livemax")
DEAD_LETTERS = Gauge("graphrec_journal_dead_letters", "Journal entries that can never be written, set aside in "
                     "dead-letter.jsonl with their reason", registry=REGISTRY, multiprocess_mode="livemax")
JOURNAL_STUCK = Gauge("graphrec_journal_stuck", "1 while journal entries wait with the Neo4j breaker closed and the "
                      "replay not moving (engine.journal_stuck_s)", registry=REGISTRY, multiprocess_mode="livemax")
BREAKER_OPEN = Gauge("graphrec_breaker_open", "1 while a store's circuit breaker in this worker is not closed", ["store"],
                     registry=REGISTRY, multiprocess_mode="liveall")


def exposition() -> bytes:
    """The text exposition: of every worker in multiprocess mode, else of this process."""
    from prometheus_client import generate_latest

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
