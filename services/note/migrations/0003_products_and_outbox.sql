ALTER TABLE notes ADD COLUMN product_ids TEXT NOT NULL DEFAULT '[]';
ALTER TABLE notes ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
-- note_outbox holds note events written in the same transaction as the change they describe,
-- until a relay has published them. claimed_until is 0 for a new event, else the end of a
-- relay's lease or the time of the next retry.
CREATE TABLE IF NOT EXISTS note_outbox (
  id            BIGINT PRIMARY KEY,
  subject       TEXT NOT NULL,
  payload       TEXT NOT NULL,
  header        TEXT NOT NULL,
  created_at    BIGINT NOT NULL,
  claimed_until BIGINT NOT NULL DEFAULT 0,
  attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS note_outbox_ready ON note_outbox (claimed_until, id);
