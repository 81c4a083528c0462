-- stock is one row per SKU. The CHECKs are a last line of defence: Reserve's conditional
-- decrement already keeps available from going negative.
CREATE TABLE IF NOT EXISTS stock (
  sku_id     BIGINT PRIMARY KEY,
  available  BIGINT NOT NULL CHECK (available >= 0),
  reserved   BIGINT NOT NULL CHECK (reserved >= 0),
  updated_at BIGINT NOT NULL
);
-- reservations is one row per order: state is reserved, confirmed or released.
CREATE TABLE IF NOT EXISTS reservations (
  order_id   BIGINT PRIMARY KEY,
  state      TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS reservation_items (
  order_id BIGINT NOT NULL,
  sku_id   BIGINT NOT NULL,
  quantity BIGINT NOT NULL,
  PRIMARY KEY (order_id, sku_id)
);
