// Schema version 2: items carry updated_at (set by load/items when an upsert changes them), indexed so the
// engine's periodic catalogue refresh reads only what changed (recs/catalog_changed). Items
// written before v2 have no updated_at: the engine's full refresh (engine.catalog_full_refresh_s)
// still reads them. Idempotent; takes no parameters.
CREATE INDEX item_updated IF NOT EXISTS FOR (i:Item) ON (i.updated_at)
