-- Roots (root_id 0) and replies in one table. Rows are written by the consumer of the
-- comment queue, insert-if-absent by id, and never removed: deleted_at hides them.
CREATE TABLE IF NOT EXISTS comments (
  id          BIGINT PRIMARY KEY,
  note_id     BIGINT NOT NULL,
  user_id     BIGINT NOT NULL,
  root_id     BIGINT NOT NULL,
  parent_id   BIGINT NOT NULL,
  body        TEXT NOT NULL,
  -- Visible replies of a root.
  reply_count BIGINT NOT NULL DEFAULT 0,
  created_at  BIGINT NOT NULL,
  -- 0 while visible; when the comment or its root was deleted otherwise.
  deleted_at  BIGINT NOT NULL DEFAULT 0,
  -- 1 when the interaction service's comment counter includes this comment.
  counted     INTEGER NOT NULL DEFAULT 0,
  -- Unix ms until which a counter sync owns the row; 0 when none does.
  count_lease BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS comments_new ON comments (note_id, root_id, deleted_at, id);
CREATE INDEX IF NOT EXISTS comments_hot ON comments (note_id, root_id, deleted_at, reply_count, id);
CREATE INDEX IF NOT EXISTS comments_replies ON comments (root_id, deleted_at, id);
-- The comments whose counter is behind: few, found by the relay.
CREATE INDEX IF NOT EXISTS comments_unsynced ON comments (id)
  WHERE (counted = 0 AND deleted_at = 0) OR (counted = 1 AND deleted_at <> 0);
