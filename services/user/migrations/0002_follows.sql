CREATE TABLE IF NOT EXISTS follows (
  follower_id BIGINT NOT NULL,
  followee_id BIGINT NOT NULL,
  seq         BIGINT NOT NULL,
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX IF NOT EXISTS follows_followee_seq ON follows (followee_id, seq);
CREATE INDEX IF NOT EXISTS follows_follower_seq ON follows (follower_id, seq);
