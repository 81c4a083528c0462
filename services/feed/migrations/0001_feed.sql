-- feed_notes is every note the feed heard of, fed by note events: enough to page the
-- explore feeds, to pull big authors' notes at read time, and to order events by version.
-- A deleted note stays as a tombstone (deleted = 1) so a late, older event cannot revive it.
CREATE TABLE IF NOT EXISTS feed_notes (
  note_id    BIGINT PRIMARY KEY,
  author_id  BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  version    BIGINT NOT NULL,
  deleted    INTEGER NOT NULL DEFAULT 0,
  fanned_out INTEGER NOT NULL DEFAULT 0,
  score      DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS feed_notes_author ON feed_notes (author_id, created_ms, note_id);
CREATE INDEX IF NOT EXISTS feed_notes_recent ON feed_notes (created_ms, note_id);
CREATE INDEX IF NOT EXISTS feed_notes_hot ON feed_notes (score, note_id);
-- inbox is each user's home feed as written by fan-out, capped per user.
CREATE TABLE IF NOT EXISTS inbox (
  user_id    BIGINT NOT NULL,
  note_id    BIGINT NOT NULL,
  author_id  BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  PRIMARY KEY (user_id, note_id)
);
CREATE INDEX IF NOT EXISTS inbox_page ON inbox (user_id, created_ms, note_id);
CREATE INDEX IF NOT EXISTS inbox_note ON inbox (note_id);
-- inbox_counts counts the rows fan-out added to an inbox since it was last trimmed; it may
-- overcount (deletes do not decrement it), which only brings a trim forward.
CREATE TABLE IF NOT EXISTS inbox_counts (
  user_id BIGINT PRIMARY KEY,
  n       BIGINT NOT NULL
);
-- big_authors are authors found with more followers than the fan-out threshold: their notes
-- are pulled at read time. An author stays big once marked.
CREATE TABLE IF NOT EXISTS big_authors (
  author_id BIGINT PRIMARY KEY,
  followers BIGINT NOT NULL,
  marked_ms BIGINT NOT NULL
);
