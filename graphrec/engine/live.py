"""What the engine serves with, kept current in the background: the in-memory catalogue and
popular lists, the live GNN version and the ranker (used only with the GNN it was trained on),
the mapped neighbour lists of the graph's last neighbour refresh."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from graphrec.core.recs.model import LiveModel
from graphrec.core.recs.neighbour_index import NeighbourIndex
from graphrec.core.recs.user_vector import recipe
from graphrec.core.registry import artifact_path
from graphrec.engine.catalog import load_catalog
from graphrec.engine.guard import Guard
from graphrec.engine.state import Serving

log = logging.getLogger("graphrec.engine")


def ranker_usable(s: Serving) -> bool:
    """The ranker is used only when it is enabled and was trained on the live GNN version (its
    features, embedding similarities among them, come from that GNN's embeddings)."""
    r = s.ranker
    return bool(r is not None and r.enabled and s.model is not None and r.gnn_version == s.model.version)


class Live:
    def __init__(self, s: Serving, guard: Guard) -> None:
        self.s = s
        self.guard = guard
        self.neighbour_version: str | None = None  # the version the graph named at the last check

    async def refresh_catalog(self, full: bool = False) -> None:
        """Refresh the in-memory catalogue and popular lists (the degraded-mode fallback): the
        items changed since the last refresh, or every item once ``catalog_full_refresh_s`` has
        passed since the last full read (and at start). After a full read the listeners run (the
        API freezes the new catalogue out of the garbage collector's view)."""
        s, cfg = self.s, self.s.cfg
        now = time.time()
        full = full or not s.catalog.loaded or now - s.catalog.full_at >= cfg.catalog_full_refresh_s
        popular_due = full or now - s.catalog.popular_at >= cfg.popular_refresh_s
        full_before = s.catalog.full_at
        s.catalog = await self.guard.neo4j(load_catalog(
            s.store, s.type_weights, cfg.popular_window_days * 86400.0,
            cfg.popular_half_life_days * 86400.0, previous=s.catalog, full=full,
            refresh_popular=popular_due, shared=s.shared_popular,
            popular_page_items=cfg.popular_page_items, popular_duty=cfg.popular_scan_duty,
            max_clock_skew_s=s.settings.loader.max_clock_skew_s, popular_min_events=cfg.popular_min_events))
        if s.catalog.full_at != full_before:  # a full read (asked for, or a bulk of changes)
            for listener in s.catalog_listeners:
                listener()

    async def refresh_neighbour_files(self) -> None:
        """Map the neighbour lists' files of the refresh the graph names (its ``neighbours``
        GraphrecMeta node; ``var/neighbours/<version>``), or stop using files when it names a
        version this machine has no files for (the lists are then read from Neo4j)."""
        s = self.s
        if not s.cfg.neighbour_files:
            return
        rows = await self.guard.neo4j(s.store.read("load/meta_get", key="neighbours"))
        version = str((rows[0]["props"].get("version") or "") if rows else "")
        held = s.neighbours.index
        if held is not None and held.version == version:
            return
        path = s.settings.var_dir / "neighbours" / version
        index = None
        if version and path.is_dir():
            try:
                index = await asyncio.to_thread(NeighbourIndex.open, path)
            except (OSError, ValueError, KeyError, EOFError) as exc:  # what np.load and json raise
                log.warning("neighbour lists' files at %s not usable (%s): reading the lists from Neo4j", path, exc)
        if index is not None:
            log.info("neighbour lists: mapped version %s (%d items) from %s", version, len(index), path)
        elif held is not None or version != self.neighbour_version:
            log.info("neighbour lists: no files for version %s at %s; reading them from Neo4j",
                     version or "(none)", path.parent)
        self.neighbour_version = version
        s.neighbours.index = index

    async def refresh_model(self) -> None:
        """Swap in the live GNN version (and the ranker) when the registry says it changed."""
        s = self.s
        rows = await self.guard.neo4j(s.store.read("registry/live", kind="gnn"))
        if not rows:
            return
        m = rows[0]["m"]
        if s.model is None or s.model.version != m["id"]:
            art = artifact_path(s.settings.var_dir / "models", m["artifact_dir"]) or ""
            model = await asyncio.to_thread(LiveModel.load, m["id"], art, m.get("collection"), self.configured_recipe())
            await self.guard.warm_vectors(model)
            s.model = model
            s.clear_results()
        rrows = await self.guard.neo4j(s.store.read("registry/live", kind="ranker"))
        if rrows and (s.ranker is None or s.ranker.version != rrows[0]["m"]["id"]):
            from graphrec.engine.ranker import LoadedRanker

            r = rrows[0]["m"]
            art = artifact_path(s.settings.var_dir / "models", r["artifact_dir"]) or ""
            s.ranker = await asyncio.to_thread(LoadedRanker.load, r["id"], art, bool(r.get("enabled", False)),
                                               r.get("gnn_version"))
            s.clear_results()
        self.update_ranker_status()

    def configured_recipe(self) -> dict[str, Any]:
        """The user-vector recipe of these settings: serves a version saved without one."""
        st = self.s.settings
        return recipe(st.interactions.vector_weights, st.gnn.rating_center, st.gnn.half_life_days, st.gnn.max_history)

    def update_ranker_status(self) -> None:
        s = self.s
        r, m = s.ranker, s.model
        if r is None:
            status = "no ranker"
        elif not r.enabled:
            status = f"ranker {r.version} disabled: it did not beat the pipeline served without it offline"
        elif m is None or r.gnn_version != m.version:
            status = (f"ranker {r.version} not used: trained on GNN {r.gnn_version}, the live GNN is "
                      f"{m.version if m else 'none'}; ranking without it until it is retrained")
        else:
            status = f"ranker {r.version} in use (trained on GNN {r.gnn_version})"
        if status != s.ranker_status:
            (log.warning if "not used" in status else log.info)("%s", status)
        s.ranker_status = status
