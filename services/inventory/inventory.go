// Package inventory wires the inventory service: stock per SKU, and reservations that take
// stock for an order all or nothing, then confirm it as sold or release it, idempotently per
// order id and never below zero.
package inventory

import (
	"context"
	"fmt"

	inventoryv1 "github.com/redline-dev/redline/api/inventory/v1"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/inventory/internal/biz"
	"github.com/redline-dev/redline/services/inventory/internal/data"
	"github.com/redline-dev/redline/services/inventory/internal/service"
	"github.com/redline-dev/redline/services/inventory/migrations"
)

// Name is the service's name in the registry and in metrics.
const Name = "inventory"

// Idempotent lists the methods callers may retry: all of them. GetStock reads, SetStock
// sets an absolute level, and Reserve, Confirm and Release are idempotent per order id.
var Idempotent = []string{
	inventoryv1.Inventory_SetStock_FullMethodName,
	inventoryv1.Inventory_GetStock_FullMethodName,
	inventoryv1.Inventory_Reserve_FullMethodName,
	inventoryv1.Inventory_Confirm_FullMethodName,
	inventoryv1.Inventory_Release_FullMethodName,
}

// New migrates db and returns the gRPC service.
func New(ctx context.Context, db *sqldb.DB) (inventoryv1.InventoryServer, error) {
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, fmt.Errorf("inventory: migrate: %w", err)
	}
	return service.New(biz.NewUsecase(data.NewRepo(db))), nil
}
