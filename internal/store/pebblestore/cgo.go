//go:build cgo

package pebblestore

// withCgo: Pebble keeps its memtables and block cache outside the Go heap
// (see warnNoCgo).
const withCgo = true
