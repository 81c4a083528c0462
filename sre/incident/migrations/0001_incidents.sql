-- One row per incident. Timestamps are unix milliseconds; 0 means "not yet".
-- open_key is the dedup key while the incident is open and NULL once resolved, so at most one
-- open incident has a given key (NULLs never collide in a UNIQUE index, on either engine).
CREATE TABLE IF NOT EXISTS incidents (
  id              TEXT PRIMARY KEY,
  title           TEXT NOT NULL,
  service         TEXT NOT NULL,
  severity        TEXT NOT NULL,
  state           TEXT NOT NULL,
  dedup_key       TEXT NOT NULL,
  open_key        TEXT,
  commander       TEXT NOT NULL DEFAULT '',
  comms           TEXT NOT NULL DEFAULT '',
  impact_start_at BIGINT NOT NULL,
  triggered_at    BIGINT NOT NULL,
  acknowledged_at BIGINT NOT NULL DEFAULT 0,
  mitigated_at    BIGINT NOT NULL DEFAULT 0,
  resolved_at     BIGINT NOT NULL DEFAULT 0,
  updated_at      BIGINT NOT NULL,
  alert_count     BIGINT NOT NULL DEFAULT 0,
  last_signal     TEXT NOT NULL DEFAULT '',
  esc_policy      TEXT NOT NULL DEFAULT '',
  esc_level       INTEGER NOT NULL DEFAULT 0,
  esc_next_at     BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_open_key ON incidents (open_key);
CREATE INDEX IF NOT EXISTS incidents_esc_next_at ON incidents (esc_next_at);
CREATE INDEX IF NOT EXISTS incidents_triggered_at ON incidents (triggered_at);
CREATE TABLE IF NOT EXISTS incident_timeline (
  incident_id TEXT NOT NULL REFERENCES incidents (id),
  seq         BIGINT NOT NULL,
  at          BIGINT NOT NULL,
  kind        TEXT NOT NULL,
  actor       TEXT NOT NULL,
  text        TEXT NOT NULL,
  PRIMARY KEY (incident_id, seq)
);
CREATE TABLE IF NOT EXISTS incident_todos (
  incident_id TEXT NOT NULL REFERENCES incidents (id),
  seq         BIGINT NOT NULL,
  owner       TEXT NOT NULL,
  text        TEXT NOT NULL,
  done        INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (incident_id, seq)
);
