-- orders: state is CREATING, PENDING_PAYMENT, PAID or CLOSED. settle_pending is 1 while a
-- PAID or CLOSED order still owes its inventory Confirm or Release.
CREATE TABLE IF NOT EXISTS orders (
  id              BIGINT PRIMARY KEY,
  user_id         BIGINT NOT NULL,
  idempotency_key TEXT NOT NULL,
  request_hash    TEXT NOT NULL,
  state           TEXT NOT NULL,
  total           BIGINT NOT NULL,
  currency        TEXT NOT NULL,
  payment_id      BIGINT NOT NULL DEFAULT 0,
  close_reason    TEXT NOT NULL DEFAULT '',
  close_detail    TEXT NOT NULL DEFAULT '',
  settle_pending  INTEGER NOT NULL DEFAULT 0,
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL,
  expires_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS orders_idem ON orders (user_id, idempotency_key);
CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id, id);
-- The closer's two queries read only these partial indexes.
CREATE INDEX IF NOT EXISTS orders_open ON orders (expires_at) WHERE state IN ('CREATING', 'PENDING_PAYMENT');
CREATE INDEX IF NOT EXISTS orders_unsettled ON orders (updated_at) WHERE settle_pending = 1;
-- order_items are the price snapshots; attributes is a JSON object.
CREATE TABLE IF NOT EXISTS order_items (
  order_id   BIGINT NOT NULL,
  sku_id     BIGINT NOT NULL,
  spu_id     BIGINT NOT NULL,
  title      TEXT NOT NULL,
  attributes TEXT NOT NULL,
  unit_price BIGINT NOT NULL,
  quantity   BIGINT NOT NULL,
  PRIMARY KEY (order_id, sku_id)
);
