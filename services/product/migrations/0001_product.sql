-- spus are products; deleted_at > 0 hides one (and its skus) everywhere.
CREATE TABLE IF NOT EXISTS spus (
  id              BIGINT PRIMARY KEY,
  title           TEXT NOT NULL,
  description     TEXT NOT NULL,
  tags            TEXT NOT NULL,
  min_price       BIGINT NOT NULL,
  currency        TEXT NOT NULL,
  version         BIGINT NOT NULL,
  idempotency_key TEXT,
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL,
  deleted_at      BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS spus_idem ON spus (idempotency_key);
-- skus are the priced variants; attributes is a JSON object, position the creation order.
CREATE TABLE IF NOT EXISTS skus (
  id         BIGINT PRIMARY KEY,
  spu_id     BIGINT NOT NULL,
  position   INTEGER NOT NULL,
  attributes TEXT NOT NULL,
  price      BIGINT NOT NULL CHECK (price >= 0),
  currency   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS skus_spu ON skus (spu_id, position);
-- outbox holds product events committed with their change and not yet published.
CREATE TABLE IF NOT EXISTS outbox (
  id         BIGINT PRIMARY KEY,
  subject    TEXT NOT NULL,
  payload    TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS cart_items (
  user_id    BIGINT NOT NULL,
  sku_id     BIGINT NOT NULL,
  quantity   BIGINT NOT NULL CHECK (quantity > 0),
  added_at   BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, sku_id)
);
CREATE INDEX IF NOT EXISTS cart_items_added ON cart_items (user_id, added_at);
