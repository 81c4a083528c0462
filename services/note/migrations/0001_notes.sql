CREATE TABLE IF NOT EXISTS notes (
  id              BIGINT PRIMARY KEY,
  author_id       BIGINT NOT NULL,
  title           TEXT NOT NULL,
  body            TEXT NOT NULL,
  tags            TEXT NOT NULL,
  media           TEXT NOT NULL,
  idempotency_key TEXT,
  created_at      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_author_id ON notes (author_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS notes_author_idem ON notes (author_id, idempotency_key);
