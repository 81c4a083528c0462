// Package note wires the note service: notes with media references and tags, idempotent
// creation and newest-first cursor pages per author.
package note

import (
	"context"
	"fmt"

	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/kit/data/sqldb"
	"github.com/redline-dev/redline/services/note/internal/biz"
	"github.com/redline-dev/redline/services/note/internal/data"
	"github.com/redline-dev/redline/services/note/internal/service"
	"github.com/redline-dev/redline/services/note/migrations"
)

// Name is the service's name in the registry and in metrics.
const Name = "note"

// Idempotent lists the methods callers may retry: the reads, and UpdateNote and DeleteNote,
// which set absolute state. CreateNote is made safe to
// repeat by its idempotency_key field, which callers set from the client's Idempotency-Key.
var Idempotent = []string{notev1.Note_GetNote_FullMethodName, notev1.Note_ListByAuthor_FullMethodName,
	notev1.Note_ListByTag_FullMethodName, notev1.Note_UpdateNote_FullMethodName, notev1.Note_DeleteNote_FullMethodName}

// New migrates db and returns the gRPC service.
func New(ctx context.Context, db *sqldb.DB) (notev1.NoteServer, error) {
	if err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		return nil, fmt.Errorf("note: migrate: %w", err)
	}
	return service.New(biz.NewUsecase(data.NewRepo(db))), nil
}
