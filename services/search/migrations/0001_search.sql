-- docs is one row per indexed note or product: what a hit shows, and the version that the
-- next event must beat. A deleted document keeps its row as a tombstone (deleted = 1, no
-- postings), so an older event redelivered later cannot bring it back.
CREATE TABLE IF NOT EXISTS docs (
  kind       TEXT NOT NULL,
  doc_id     BIGINT NOT NULL,
  version    BIGINT NOT NULL,
  deleted    INTEGER NOT NULL,
  title      TEXT NOT NULL,
  author_id  BIGINT NOT NULL,
  min_price  BIGINT NOT NULL,
  currency   TEXT NOT NULL,
  recency_ms BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (kind, doc_id)
);
-- postings is the inverted index: one row per term of a live document, weight being the
-- term's weighted occurrences in it. A query reads the rows of its terms through the
-- primary key.
CREATE TABLE IF NOT EXISTS postings (
  term   TEXT NOT NULL,
  kind   TEXT NOT NULL,
  doc_id BIGINT NOT NULL,
  weight INTEGER NOT NULL,
  PRIMARY KEY (term, kind, doc_id)
);
-- postings_doc serves replacing and deleting one document's postings.
CREATE INDEX IF NOT EXISTS postings_doc ON postings (kind, doc_id);
