-- One row per user and note: the latest view. Flushes upsert it, keeping the later time.
CREATE TABLE IF NOT EXISTS history (
  user_id   BIGINT NOT NULL,
  note_id   BIGINT NOT NULL,
  viewed_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, note_id)
);
CREATE INDEX IF NOT EXISTS history_user_viewed ON history (user_id, viewed_at, note_id);
-- A user's last Clear: rows viewed at or before it are not shown, so a view written late
-- (by another instance's buffer) cannot bring back what the user cleared.
CREATE TABLE IF NOT EXISTS history_clears (
  user_id    BIGINT PRIMARY KEY,
  cleared_at BIGINT NOT NULL
);
