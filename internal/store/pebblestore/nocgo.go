//go:build !cgo

package pebblestore

// withCgo: built without cgo, Pebble allocates its memtables and block
// cache on the Go heap (see warnNoCgo).
const withCgo = false
