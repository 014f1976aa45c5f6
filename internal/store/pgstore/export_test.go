package pgstore

import "github.com/jackc/pgx/v5/pgxpool"

// Listening returns the channel signalled each time s's listener is
// listening (after starting or reconnecting).
func Listening(s *Store) <-chan struct{} { return s.ln.connected }

// Leading reports whether s holds the leader lock, and LeaderChanged is
// signalled when that changes.
func Leading(s *Store) bool                  { return s.el.leading.Load() }
func LeaderChanged(s *Store) <-chan struct{} { return s.el.changed }

// Pool is s's connection pool.
func Pool(s *Store) *pgxpool.Pool { return s.pool }
