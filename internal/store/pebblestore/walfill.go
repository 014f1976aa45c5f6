package pebblestore

// Zero-filled WAL files. Every answer waits for an fsync of the WAL (an
// fdatasync), and on ext4 an fdatasync after an append must also commit
// the file's new size and the allocation of its new blocks to the journal:
// about 0.4 ms here, against 0.1 ms for one that only overwrites blocks
// already written. Pebble reuses old WAL files once memtables have been
// flushed, but a new store, or one after a restart, writes fresh files for
// its first tens of megabytes — and Pebble's own preallocation keeps the
// size (FALLOC_FL_KEEP_SIZE), so it does not help.
//
// So each new WAL file is written with zeros a little ahead of the log's
// end, in 1 MiB chunks, before the log reaches them; its records then
// overwrite zeros. This is what PostgreSQL does with its WAL segments
// (wal_init_zero). Pebble's recovery expects it: a zeroed chunk after the
// last record reads as the end of the log ("zeroed chunk … usually occurs
// due to log file preallocation", record.ErrZeroedChunk), and a log is
// closed with an EOF trailer before the next one is used, so only the last
// log can end in zeros.
//
// The cost is writing each WAL byte twice (zeros, then the record), to the
// page cache; the zeros reach the disk with the next fsync, one slightly
// longer fsync per mebibyte of log.
//
// Pebble also preallocates each new WAL (fallocate of 110% of the
// memtable, 70 MiB, keeping the size), on the goroutine that writes and
// syncs the log. The zeros make that redundant, and it is not free: on
// tmpfs it zeroes and pins 70 MiB at once, and the log's syncs waited 28
// ms behind it; on ext4 it takes 25 µs, but the first fsync after a fill
// was no faster for it (docs/benchmarks-journal.md). So a filling file skips it.

import (
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	walFillChunk = 1 << 20   // zeros written at a time
	walFillAhead = 256 << 10 // fill when the log's end comes this close
	// In memory there is no fsync to make cheaper, and an in-memory file
	// grows a byte at a time: the tests' stores (thousands of them in the
	// crash tests) fill in small chunks, which still takes every path.
	memFillChunk = 16 << 10
	memFillAhead = 4 << 10
)

// walZeros is a chunk of zeros, never written to.
var walZeros = make([]byte, walFillChunk)

// walFillFS is fs, with new WAL files zero-filled ahead of their end.
type walFillFS struct {
	vfs.FS
	chunk, ahead int64
}

func newWALFillFS(fs vfs.FS) walFillFS {
	if _, mem := vfs.Root(fs).(*vfs.MemFS); mem {
		return walFillFS{fs, memFillChunk, memFillAhead}
	}
	return walFillFS{fs, walFillChunk, walFillAhead}
}

func (fs walFillFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || !isWAL(name) {
		return f, err
	}
	return &walFillFile{File: f, chunk: fs.chunk, ahead: fs.ahead}, nil
}

// isWAL reports whether name is one of Pebble's WAL files (NNNNNN.log).
func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

// Unwrap is the FS under the filling.
func (fs walFillFS) Unwrap() vfs.FS { return fs.FS }

// walFillFile is a WAL file being zero-filled ahead of its writes. Pebble
// writes a WAL from one goroutine; mu makes no such assumption.
type walFillFile struct {
	vfs.File
	chunk, ahead int64
	mu           sync.Mutex // guards end, filled, failed
	end          int64      // bytes written by Write: the log's end
	filled       int64      // the file holds zeros or records up to here
	failed       bool       // a fill failed (disk full, say): stop filling
}

// Write fills ahead if the log's end comes near the zeros' end, then writes
// p at the log's end as Pebble asked. Zeros are only ever written beyond
// the end of what has been (and is being) written.
func (f *walFillFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := f.end + int64(len(p))
	if !f.failed && next+f.ahead > f.filled {
		f.fill(next + f.ahead)
	}
	n, err := f.File.Write(p)
	f.end += int64(n)
	return n, err
}

// Preallocate does nothing while the file is being zero-filled (see the
// top of this file); once a fill failed, Pebble's preallocation applies.
func (f *walFillFile) Preallocate(offset, length int64) error {
	f.mu.Lock()
	failed := f.failed
	f.mu.Unlock()
	if failed {
		return f.File.Preallocate(offset, length)
	}
	return nil
}

// fill writes zeros from max(filled, the log's end) until past upTo; the
// pending write then lands on some of them. A failure only ends the
// filling: the log goes on as appends.
func (f *walFillFile) fill(upTo int64) {
	from := max(f.filled, f.end) // never below the log's end
	for from < upTo {
		if _, err := f.File.WriteAt(walZeros[:f.chunk], from); err != nil {
			f.failed = true
			return
		}
		from += f.chunk
	}
	f.filled = from
}
