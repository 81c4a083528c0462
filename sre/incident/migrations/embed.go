// Package migrations holds the incident store's versioned schema.
package migrations

import "embed"

// FS holds the NNNN_name.sql files applied by sqldb.Migrate.
//
//go:embed *.sql
var FS embed.FS
