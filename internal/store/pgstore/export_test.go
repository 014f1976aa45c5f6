package pgstore

// Listening returns the channel signalled each time s's listener is
// listening (after starting or reconnecting).
func Listening(s *Store) <-chan struct{} { return s.ln.connected }
