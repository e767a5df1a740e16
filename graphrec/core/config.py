"""Configuration: defaults in code, overridden by a TOML file, overridden by ``GRAPHREC_*`` env vars.

The file is ``$GRAPHREC_CONFIG`` or ``./graphrec.toml``; ``graphrec.example.toml`` is the
commented reference (a test checks it equals these defaults): what a user sets in each section,
internal tuning (fields declared with :func:`~graphrec.core.tuning.tuning`) apart in the
section's ``[<section>.tuning]`` table. Env vars use one underscore
between section and field: ``GRAPHREC_NEO4J_PASSWORD``, ``GRAPHREC_NEO4J_URI``,
``GRAPHREC_QDRANT_URL``, ``GRAPHREC_VAR_DIR``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from graphrec.core.errors import ConfigError
from graphrec.core.gnn_config import GNNConfig
from graphrec.core.tuning import fold_tuning, tuning


class Neo4jSettings(BaseModel):
    """The graph of record."""

    # None: graphrec provisions and manages a local Neo4j Community server under var/.
    # Any URI (bolt://, neo4j://, neo4j+s:// for clusters and Aura): nothing is started locally.
    uri: str | None = None
    user: str = "neo4j"
    # None: a generated password is stored in var/neo4j/password (mode 0600).
    password: SecretStr | None = None
    database: str = "neo4j"
    # Local server only.
    version: str = "5.26.30"
    host: str = "127.0.0.1"
    bolt_port: int = 7687
    http_port: int = 7474
    heap: str = "4g"
    pagecache: str = "4g"
    start_timeout_s: float = tuning(180.0)
    # Driver.
    max_connection_pool_size: int = tuning(50)
    # Connections each API process opens at start and keeps pooled (for reads and for writes):
    # the driver opens them on demand otherwise, all at once when the rate steps up.
    warm_connections: int = tuning(16, ge=0)
    connection_timeout_s: float = tuning(5.0)
    query_timeout_s: float = tuning(30.0)

    @property
    def managed(self) -> bool:
        """True when graphrec runs the server itself."""
        return self.uri is None

    @property
    def effective_uri(self) -> str:
        return self.uri or f"bolt://{self.host}:{self.bolt_port}"


class QdrantSettings(BaseModel):
    """The ANN index holding item embeddings."""

    # "edge": embedded Qdrant Edge shards under var/vectors (one owner process);
    # "qdrant": qdrant-client against url (a server or cluster), or local mode at path when url is empty.
    backend: Literal["edge", "qdrant"] = "edge"
    url: str | None = None
    api_key: SecretStr | None = None
    alias: str = "graphrec_items"
    hnsw_ef: int = tuning(256)
    # HNSW build: graph degree, build beam, degree of the extra per-category links (see
    # docs/vectors.md: a larger m makes Qdrant skip those links for large categories, and filtered
    # recall collapses; the default keeps them).
    hnsw_m: int = tuning(16, ge=4, le=128)
    hnsw_ef_construct: int = tuning(128, ge=16, le=1024)
    hnsw_payload_m: int = tuning(16, ge=0, le=128)
    shards: int = 1
    replicas: int = 1
    # "scalar": int8 copies of the vectors (searches rescore with the originals); both engines.
    quantization: Literal["none", "scalar"] = "none"


class LoaderSettings(BaseModel):
    batch_size: int = tuning(10_000)
    # Concurrent write transactions for interactions: each batch is split by user into one
    # transaction per writer (no shared users, items locked in one order: no deadlocks).
    writers: int = tuning(2, ge=1, le=16)
    # "skip": report bad rows and go on; "stop": stop at the first bad row (nothing of its batch is written).
    on_error: Literal["skip", "stop"] = "skip"
    max_string_length: int = 4096
    # What an interaction may say, on every path into the graph (loaders, recordInteraction, the
    # journal's replay): a time at most this far past now (a future event would move the graph's
    # clock, the "now" of every decay and popular window), ...
    max_clock_skew_s: float = Field(default=300.0, ge=0)
    # ... a rating within [rating_min, rating_max] (the model centres ratings on a 0-5 scale), any
    # other type's value within [0, other_value_max] (one event must not outweigh many ratings).
    rating_min: float = 0.0
    rating_max: float = 5.0
    other_value_max: float = Field(default=1.0, ge=0)


class Promotion(BaseModel):
    """Boost an item's score by ``boost`` (multiplicative) until ``expires_at`` (epoch seconds)."""

    item_id: str
    boost: float = 1.5
    expires_at: float


def _default_sources() -> dict[str, dict[str, float]]:
    return {
        "HOME_FEED": {"hybrid": 1.0, "ann": 1.0, "co_interaction": 1.0, "content": 0.4, "session": 0.8, "popular": 0.3, "fresh": 0.1},
        "SIMILAR_ITEMS": {"ann": 1.0, "co_interaction": 1.0, "content": 0.5},
        "SEARCH_RERANK": {"ann": 1.0, "co_interaction": 1.0, "content": 0.4, "popular": 0.2},
        "EMAIL": {"ann": 1.0, "co_interaction": 1.0, "content": 0.4, "popular": 0.3, "fresh": 0.2},
    }


class EngineSettings(BaseModel):
    """The request-time pipeline: sources, budgets, rules."""

    # Candidate sources per surface and their weights in score fusion (0 or absent = off).
    sources: dict[str, dict[str, float]] = Field(default_factory=_default_sources)
    # Surfaces that never recommend what the user already interacted with.
    exclude_consumed: list[str] = Field(default_factory=lambda: ["HOME_FEED", "EMAIL", "SIMILAR_ITEMS"])
    request_budget_ms: float = 80.0  # the whole request
    source_budget_ms: float = 40.0  # each source; a late source is dropped
    # Answers slower than this are logged (WARNING, logger graphrec.engine) with their per-stage
    # timings; 0 turns the log off.
    slow_log_ms: float = 250.0
    # Without a usable vector index, the ANN source scans the live model's vectors exactly, in
    # memory, only up to this many items (the scan's CPU grows with the catalogue).
    exact_fallback_max_items: int = tuning(200_000)
    # With a healthy index too, a request scans the live model's vectors in memory instead of
    # asking the index when the catalogue has at most this many items: a scan this small costs
    # less CPU than the index's answer, and is exact.
    exact_search_max_items: int = tuning(10_000)
    candidates_per_source: int = tuning(200)
    history: int = tuning(50)  # recent interactions read per request
    seeds: int = tuning(20)  # recent positive items used as seeds
    # Consumed items read per request: excluded from its answer (on the surfaces above) or
    # down-weighted; of a user with more, only this many (in no set order) are known to it.
    max_consumed: int = Field(default=5000, ge=1)
    half_life_days: float = 90.0  # recency decay of seeds and user vectors
    popular_window_days: float = 30.0
    popular_half_life_days: float = 7.0
    # A window ending at the clock that holds fewer interactions than this is widened back until it
    # holds this many, its half-life stretched by the same factor: a few live events on a
    # historical dataset do not replace the catalogue's popularity (docs/graph-model.md).
    popular_min_events: int = Field(default=10_000, ge=0)
    fresh_window_days: float = 14.0  # fresh: created at most this long before the clock
    catalog_refresh_s: float = tuning(60.0)  # in-memory catalogue (items changed since) and popular lists
    # The popular lists' window queries (they scan the window's interactions) run once per this
    # period for all API processes together (one takes a lease, the others adopt its lists).
    popular_refresh_s: float = tuning(300.0)
    # That scan reads this many items' interactions per query and pauses between queries so that
    # it keeps one Neo4j core busy at most this share of the time (1.0: no pause).
    popular_page_items: int = tuning(20_000, ge=1)
    popular_scan_duty: float = tuning(0.33, gt=0, le=1)
    catalog_full_refresh_s: float = tuning(3600.0)  # every item re-read (interaction counts; costly at millions of items)
    model_poll_s: float = tuning(10.0)  # how often the live model version is checked
    max_per_category: int = 0  # 0: no cap
    mmr_lambda: float = 0.85  # 1.0: pure relevance; lower: more diverse
    # Share of the home feed's slots after the third given to exploration (popular items the user
    # has not consumed, seeded per request); 0: none. Opt-in: on a 100-item page, 0.05 cost the
    # served Recall@100 about 4% on a held-out MovieLens split (python -m bench.served_quality).
    explore_epsilon: float = Field(default=0.0, ge=0.0, le=1.0)
    prefetch_neighbours: int = tuning(5000)  # neighbour lists of the most popular items loaded at start
    # Map the neighbour lists refresh-neighbours also writes as files (var/neighbours) when the
    # graph names their version; off, or without the files, the lists are read from Neo4j.
    neighbour_files: bool = tuning(True)
    result_cache_size: int = tuning(10000)
    result_cache_ttl_s: float = 30.0
    # While Neo4j is unavailable, the last complete answer to the same request (same user, surface,
    # size, filter and context; similarItems: same item) up to stale_ttl_s old is served again,
    # marked degraded with the reasons "neo4j" and "stale", instead of the popular list from memory.
    # 0 turns this off.
    stale_ttl_s: float = Field(default=600.0, ge=0)
    # recordInteraction moves the graph's clock (the newest interaction time, "now" for decay)
    # only when it is more than this far behind: the clock is one node, and writing it with every
    # request makes every live write take the same lock until its commit (a serial point for many
    # API replicas). 0 = every request.
    clock_slack_s: float = tuning(60.0, ge=0)
    # At start, before the worker reports ready, real users (a sample) are served recommendations
    # in rounds of 25 until the answers stop getting faster and none is degraded by Neo4j, at most
    # warm_up_s: after a Neo4j restart its read path runs interpreted at first, slower and with
    # timeouts, until Neo4j's JIT has compiled it. 0 = off.
    warm_up_s: float = tuning(20.0, ge=0)
    # Before that, each worker commits the write path's shape this many times on nodes of its own
    # (removed after): after a Neo4j start the first commits are slow until Neo4j's JIT compiles
    # its commit path (a few seconds of commits). 0 = off.
    warm_up_commits: int = tuning(1000, ge=0)
    # Item fields shown with recommendations (title, tags...) are read through this cache; a change
    # made by another process (a loader, another API worker) shows within item_cache_ttl_s.
    item_cache_size: int = tuning(100_000)
    item_cache_ttl_s: float = tuning(30.0)
    breaker_failures: int = tuning(3)
    breaker_reset_s: float = tuning(5.0)
    # At most this many of the request path's Neo4j reads in flight per process (late ones count
    # until they finish); a request past it is answered degraded at once. Keep it below
    # neo4j.max_connection_pool_size: the rest stays for writes, state polls and refreshes.
    neo4j_request_reads: int = tuning(24, ge=1)
    # A journalled interaction whose replay fails this many times for a reason of its own (an
    # error that is neither Neo4j unavailable or busy nor a known refusal) is dead-lettered with
    # that error, so that it cannot hold the entries after it; the replay runs every 2 s.
    journal_max_attempts: int = tuning(20, ge=1)
    # /readyz says "journal_stuck" when entries have waited this long with the Neo4j breaker
    # closed and the replay has not moved (another process holding the replay lock, a bug).
    journal_stuck_s: float = tuning(60.0, gt=0)
    # The user states (recent history, consumed items) each process holds: a request for a held
    # user is answered from memory while the state is known fresh; a miss reads Neo4j and is kept.
    # Users whose state is over 32 KB are not kept, which bounds the held states at size × 32 KB
    # per process. An entry is re-read after user_state_cache_ttl_s whatever the polls said.
    user_state_cache_size: int = tuning(10_000, ge=0)
    user_state_cache_ttl_s: float = tuning(600.0, ge=0)
    # At start (in the background warm-up) each process reads the states of this many of the most
    # recently active users (at most user_state_cache_size), so that their requests are answered
    # from memory from the first one. 0: states are read on each user's first request only.
    user_state_preload: int = tuning(10_000, ge=0)
    # Each process polls the graph every state_sync_s for the users whose history changed
    # (User.history_at, stamped by every interaction write with the server's clock) and stops
    # serving their held state; held state is served only while the last poll succeeded within
    # 2 × state_sync_s (with Neo4j away, requests read Neo4j as without held state). A write
    # through one process shows in the others' answers within state_sync_s plus a poll. 0: no
    # polling, every request reads its user's state from Neo4j.
    state_sync_s: float = Field(default=1.0, ge=0)
    # Each poll re-reads the users stamped this long before the previous poll began: a write's
    # stamp is taken before its commit, so a transaction longer than this could be missed (its
    # users' held state then lives until user_state_cache_ttl_s).
    state_sync_overlap_s: float = tuning(5.0, ge=0)
    # Users a poll reads at most; past it every held state is re-read (after a bulk load).
    state_sync_limit: int = tuning(10_000, ge=1)
    promotions: list[Promotion] = Field(default_factory=list)


def _score_weights() -> dict[str, float]:
    return {"PURCHASED": 3.0, "RATED": 1.0, "CLICKED": 0.7, "VIEWED": 0.3, "SKIPPED": 0.0}


def _vector_weights() -> dict[str, float]:
    return {"PURCHASED": 2.0, "RATED": 1.0, "CLICKED": 0.8, "VIEWED": 0.4, "SKIPPED": -0.5}


class InteractionSettings(BaseModel):
    """What one interaction of each type counts for (the one definition: the engine, the
    neighbour refresh, the ranker's offline replay and training read these)."""

    # In collaborative scores: co-interaction and shared-content paths, neighbour lists, popular
    # lists and the seeds taken from a user's history. A type absent here counts 0.
    score_weights: dict[str, float] = Field(default_factory=_score_weights)
    # In a user's vector (the history's item embeddings pooled; negative pushes away). Saved with
    # every model version (user_params.json): a change applies from the next training.
    vector_weights: dict[str, float] = Field(default_factory=_vector_weights)


class ApiSettings(BaseModel):
    """The GraphQL API (``graphrec serve``)."""

    host: str = "127.0.0.1"  # loopback by default
    port: int = 8000
    workers: int = 2  # one per core on the 2-core target machine
    # GraphQL requests in progress per worker; beyond it new ones get 503 OVERLOADED at once (with
    # Retry-After) instead of queueing without bound: at a few ms of CPU per request, 32 in progress
    # is already a queue of a few hundred ms.
    max_in_flight: int = tuning(32)
    # Open connections per worker (uvicorn's limit_concurrency); idle keep-alive connections of
    # proxies and clients count here, not in max_in_flight.
    max_connections: int = tuning(2048)
    graphiql: bool = False
    introspection: bool = True
    anonymous_read: bool = False  # `make demo` turns this on
    max_body_bytes: int = 262_144
    max_depth: int = 8
    max_aliases: int = 15
    max_tokens: int = 2000
    # Token bucket per API key (anonymous: per client address), in each worker process. It keeps
    # one runaway key from taking every worker; the default lets one backend key (a shop's server
    # calling for all its visitors) use the whole capacity the service is sized for, cached
    # answers included: far above it, the in-flight limit (503 OVERLOADED) sheds the load anyway.
    rate_limit_per_s: float = 500.0
    rate_limit_burst: int = 1000
    key_cache_ttl_s: float = tuning(5.0)  # revocations take effect within this
    # Query cost (api/cost.py: list sizes multiply down nested fields, batches count per entry,
    # aliases add up): per request, and per API key (anonymous: client address) per window.
    max_query_cost: int = 10_000
    # Per key and worker process, like the rate limit: room for a backend key's full rate of
    # recommendations(first: 20) with their items (cost 51 each), not for a stream of queries
    # near max_query_cost.
    cost_per_window: int = 2_000_000
    cost_window_s: float = 60.0
    # Requests refused for their credentials (no key, a bad, unknown or revoked key), per client
    # address; past it, 429 without looking the key up. Unknown key ids are remembered this long.
    auth_failures_per_s: float = tuning(1.0)
    auth_failures_burst: int = tuning(20)
    unknown_key_ttl_s: float = tuning(60.0)
    # The HTTP connection (api/server.py): a request's line and headers at most max_header_bytes
    # in at most max_headers headers; a request (head and body) must arrive within
    # read_timeout_s of its first byte (or of the connection, or of the previous answer);
    # at most max_connections_per_client open connections per client address per worker (the
    # socket's peer: behind a reverse proxy that is the proxy, so raise it there).
    max_header_bytes: int = tuning(16_384)
    max_headers: int = tuning(64)
    read_timeout_s: float = tuning(10.0)
    max_connections_per_client: int = 64
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated
    # addresses or networks, "*" for any; uvicorn's forwarded_allow_ips). Empty: none; the client is
    # the socket's peer, so no client can choose the address its per-address limits count against.
    forwarded_allow_ips: str = ""
    # Keys with the `interact` scope (browser widgets) may only record interactions, and only from
    # these origins (the key's own list when it has one); empty: no origin is allowed.
    interact_origins: list[str] = Field(default_factory=list)
    interact_per_s: float = 5.0  # interact-scope requests per key per client address
    interact_burst: int = 20
    # Cyclic GC: "idle" collects young generations between requests and a full collection every
    # gc_full_every_s (api/collector.py); "auto" leaves CPython's automatic collector on.
    gc: Literal["idle", "auto"] = tuning("idle")
    gc_young_every: int = tuning(2000)  # net allocations pending before an idle-time young collection
    gc_young_limit: int = tuning(100_000)  # ... and before one even with requests in flight
    gc_full_every_s: float = tuning(60.0)


Protocol = Literal["user-temporal", "global-time"]
_PROTOCOLS: tuple[Protocol, ...] = ("user-temporal", "global-time")


class TrainingSettings(BaseModel):
    """Model lifecycle: retraining schedule and promotion gate."""

    cron: str = "0 3 * * *"  # graphrec schedule: daily at 03:00 (UTC)
    # A new version is promoted only if NDCG@10 and Recall@100 stay within this relative
    # tolerance of the live version's (or with --force).
    tolerance: float = 0.02
    keep_collections: int = 3  # published vector collections kept (the live one and rollbacks)
    refit_full: bool = True  # after evaluating on the temporal split, refit on all data for serving
    # The offline comparison with MostPopular, ItemKNN, ALS and EASE (EASE inverts an items x items
    # matrix: off for catalogues of ~100k items and more).
    baselines: bool = True
    # Validation and test rank the whole catalogue for every user: above this many users a seeded
    # sample is evaluated (0: all). Each evaluated user costs one dot product per item.
    max_eval_users: int = tuning(0)
    # Evaluation protocols of `graphrec train` (gnn.evaluate): "user-temporal" (per user, the last
    # 20% by time held out) and "global-time" (train before the global_cut quantile of timestamps,
    # test what each user did after it, new users and items counted). Every model runs on each.
    protocols: list[Protocol] = Field(default_factory=lambda: list(_PROTOCOLS))
    # The protocol whose split chooses the epochs and gates promotion (candidate and live version
    # scored on the same split in the same run).
    gate_protocol: Protocol = "user-temporal"
    global_cut: float = Field(default=0.8, gt=0, lt=1)
    # Worker processes (one torch thread each) for the fits that follow early stopping (gnn.fits);
    # 0: the cores this process may run on, at most 2, as many as the free memory holds (each
    # worker holds a copy of the snapshot); 1: every fit in the training process.
    fit_workers: int = Field(default=0, ge=0)


class Settings(BaseSettings):
    """All of graphrec's settings."""

    model_config = SettingsConfigDict(
        env_prefix="GRAPHREC_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    # Where servers keep data and logs, models and vector shards live.
    var_dir: Path = Path("var")
    # Where cached downloads (Neo4j jars, dataset wheels) live, outside the repo.
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "graphrec")
    seed: int = 42
    neo4j: Neo4jSettings = Field(default_factory=Neo4jSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    loader: LoaderSettings = Field(default_factory=LoaderSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    interactions: InteractionSettings = Field(default_factory=InteractionSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    gnn: GNNConfig = Field(default_factory=GNNConfig)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @field_validator("var_dir", "cache_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return Path(os.path.expanduser(str(v)))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _TomlWithTuning(settings_cls, toml_file=config_path())
        return (init_settings, env_settings, toml)


class _TomlWithTuning(TomlConfigSettingsSource):
    """The TOML file, with its ``[<section>.tuning]`` tables folded into their sections."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        return fold_tuning(super()._read_file(file_path))


def config_path() -> Path:
    return Path(os.environ.get("GRAPHREC_CONFIG", "graphrec.toml"))


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning pydantic's errors into a :class:`ConfigError` naming the field."""
    from pydantic import ValidationError as PydanticValidationError

    path = config_path()
    if "GRAPHREC_CONFIG" in os.environ and not path.exists():
        raise ConfigError(f"config file {path} (from GRAPHREC_CONFIG) does not exist")
    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {field}: {first['msg']}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
