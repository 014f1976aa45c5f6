package pgstore

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/courierhq/courier/internal/store"
)

// A COMMIT lost with its connection is unknown, never failed; a COMMIT the
// server answered (it rolled back) is an ordinary error.
func TestCommitErr(t *testing.T) {
	lost := fmt.Errorf("commit: %w", io.ErrUnexpectedEOF)
	if err := commitErr(lost); !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Errorf("connection lost during COMMIT: %v, want ErrOutcomeUnknown", err)
	}
	// An application's savepoint: its last statements failed before the
	// savepoint's release was sent; nothing was committed.
	if err := commitErr(beforeCommit{lost}); errors.Is(err, store.ErrOutcomeUnknown) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("lost before COMMIT: %v, want the error itself, not unknown", err)
	}
	refused := &pgconn.PgError{Code: "40001"}
	if err := commitErr(refused); errors.Is(err, store.ErrOutcomeUnknown) {
		t.Errorf("COMMIT refused by the server: %v, want not unknown", err)
	}
}

func TestUnreachable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true}, // terminating connection due to administrator command
		{&pgconn.PgError{Code: "08006"}, true}, // connection failure
		{&pgconn.PgError{Code: "23505"}, false},
		{io.EOF, true},
		{errors.New("something else"), false},
		{store.ErrQueueNotFound, false},
	} {
		if got := unreachable(c.err); got != c.want {
			t.Errorf("unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
