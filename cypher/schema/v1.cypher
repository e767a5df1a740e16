// Schema version 1: uniqueness constraints and the indexes the library's queries need.
// Applied statement by statement (separated by ';') by `graphrec schema apply`; every
// statement is idempotent (IF NOT EXISTS). Takes no parameters.
CREATE CONSTRAINT user_id IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE;
CREATE CONSTRAINT item_id IF NOT EXISTS FOR (i:Item) REQUIRE i.id IS UNIQUE;
CREATE CONSTRAINT tag_name IF NOT EXISTS FOR (t:Tag) REQUIRE t.name IS UNIQUE;
CREATE CONSTRAINT category_name IF NOT EXISTS FOR (c:Category) REQUIRE c.name IS UNIQUE;
CREATE CONSTRAINT session_id IF NOT EXISTS FOR (s:Session) REQUIRE s.id IS UNIQUE;
CREATE CONSTRAINT entity_id IF NOT EXISTS FOR (e:Entity) REQUIRE e.id IS UNIQUE;
CREATE CONSTRAINT model_version_id IF NOT EXISTS FOR (m:ModelVersion) REQUIRE m.id IS UNIQUE;
CREATE CONSTRAINT api_key_id IF NOT EXISTS FOR (k:ApiKey) REQUIRE k.id IS UNIQUE;
CREATE CONSTRAINT meta_key IF NOT EXISTS FOR (m:GraphrecMeta) REQUIRE m.key IS UNIQUE;
CREATE CONSTRAINT rated_key IF NOT EXISTS FOR ()-[r:RATED]-() REQUIRE r.key IS UNIQUE;
CREATE CONSTRAINT viewed_key IF NOT EXISTS FOR ()-[r:VIEWED]-() REQUIRE r.key IS UNIQUE;
CREATE CONSTRAINT clicked_key IF NOT EXISTS FOR ()-[r:CLICKED]-() REQUIRE r.key IS UNIQUE;
CREATE CONSTRAINT purchased_key IF NOT EXISTS FOR ()-[r:PURCHASED]-() REQUIRE r.key IS UNIQUE;
CREATE CONSTRAINT skipped_key IF NOT EXISTS FOR ()-[r:SKIPPED]-() REQUIRE r.key IS UNIQUE;
CREATE INDEX item_created IF NOT EXISTS FOR (i:Item) ON (i.created_at);
CREATE INDEX item_available IF NOT EXISTS FOR (i:Item) ON (i.available);
CREATE INDEX model_version_status IF NOT EXISTS FOR (m:ModelVersion) ON (m.status);
CREATE FULLTEXT INDEX item_title IF NOT EXISTS FOR (i:Item) ON EACH [i.title]
