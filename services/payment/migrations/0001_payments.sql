-- payments: at most one per order. charge_sent is 1 once the provider accepted the charge;
-- mark_paid_owed is 1 while a succeeded payment has not been taken by the order service.
CREATE TABLE IF NOT EXISTS payments (
  id             BIGINT PRIMARY KEY,
  order_id       BIGINT NOT NULL,
  user_id        BIGINT NOT NULL,
  amount         BIGINT NOT NULL,
  currency       TEXT NOT NULL,
  state          TEXT NOT NULL,
  provider_ref   TEXT NOT NULL DEFAULT '',
  charge_sent    INTEGER NOT NULL DEFAULT 0,
  mark_paid_owed INTEGER NOT NULL DEFAULT 0,
  created_at     BIGINT NOT NULL,
  updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS payments_order ON payments (order_id);
-- The retry loop reads only this partial index.
CREATE INDEX IF NOT EXISTS payments_owed ON payments (updated_at)
  WHERE mark_paid_owed = 1 OR (state = 'PENDING' AND charge_sent = 0);
