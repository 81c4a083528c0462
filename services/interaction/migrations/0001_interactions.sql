-- One row per user and target: the primary key makes a repeated like or collect a no-op.
CREATE TABLE IF NOT EXISTS likes (
  user_id    BIGINT NOT NULL,
  target_id  BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, target_id)
);
CREATE TABLE IF NOT EXISTS collects (
  user_id    BIGINT NOT NULL,
  target_id  BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, target_id)
);
-- Counters are written back in batches by the service's Batcher.
CREATE TABLE IF NOT EXISTS counters (
  target_id BIGINT PRIMARY KEY,
  likes     BIGINT NOT NULL DEFAULT 0,
  collects  BIGINT NOT NULL DEFAULT 0,
  comments  BIGINT NOT NULL DEFAULT 0,
  views     BIGINT NOT NULL DEFAULT 0
);
