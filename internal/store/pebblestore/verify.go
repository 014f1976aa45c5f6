package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/atomicfs"
)

// Startup verification: the store refuses to open a damaged data directory,
// naming the damaged file, rather than serve it with acknowledged messages
// missing.
//
// Pebble checksums everything it writes, but it reads some files leniently,
// because after a crash their tails are expected to be torn:
//
//   - The newest WAL. A damaged chunk ends the replay, silently, unless a
//     chunk in a later 32 KiB block carries a synced offset past the damage
//     (proof that the damaged chunk had been synced). Damage in the WAL's last
//     block — for a WAL under 32 KiB, anywhere — drops every write after it:
//     flipping single bytes of a 21 KB WAL lost acknowledged sends and brought
//     back acked messages in 1,161 of 1,607 trials.
//   - The MANIFEST. Pebble stops reading at the first damaged record, whatever
//     follows it, and then misses (and deletes) the tables that the unread
//     records added.
//   - Tables. Block checksums are checked when a block is read, and Pebble's
//     default reaction to a failed check is to stop the process (through
//     Logger.Fatalf), from whichever goroutine read the block.
//
// openChecked closes these gaps. Holding the directory lock, it reads the
// newest WAL and the current MANIFEST chunk by chunk as Pebble will. Where
// Pebble would take an invalid chunk for a torn tail, it looks for proof that
// the chunk had been durable, in which case it is damage:
//
//   - a later WAL chunk of the same log, checksummed, whose synced offset is
//     past the invalid one (Pebble's own rule, applied to every later offset,
//     not only to later blocks);
//   - a later MANIFEST record (Pebble syncs each record before writing the
//     next);
//   - a checksum that one flipped bit would make right (a torn write does not
//     differ from what was written by one bit; media damage typically does),
//     unless the flip sets a bit in a byte from which the file reads zero to
//     the end of that byte's 512-byte sector: a torn or lost write leaves
//     that when the bytes it lost held one set bit.
//
// Then it opens Pebble with corruption reported as an error instead of a
// crash, and reads every key once so that each table's blocks are
// checksummed before the store serves.
//
// What no check can tell from a torn write: damage to the last records of
// the newest WAL written before a crash or stop (nothing written after them
// vouches for them) of more than one bit, or of one bit cleared with only
// zeros after it in its sector; or damage to the MANIFEST's last record
// (then Pebble usually fails to open for a table it cannot find, and the
// error says which record was unreadable). Reading every key costs one pass
// over the store's tables at open (docs/reliability.md has the figures);
// Options.SkipVerify turns that pass off, never the WAL and MANIFEST checks.

// errCorruptFile is wrapped by every error of this file.
var errCorruptFile = errors.New("data file is damaged")

// openChecked opens Pebble in o.Dir after checking its WAL and MANIFEST, and
// reads every key once unless o.SkipVerify. Errors name the damaged file.
func openChecked(o Options, po *pebble.Options) (*pebble.DB, error) {
	if err := o.FS.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := pebble.LockDirectory(o.Dir, o.FS)
	if err != nil {
		return nil, err
	}
	// Once Open has taken its reference, the database owns the lock: closing
	// ours leaves it held until the database is closed.
	defer lock.Close()
	tail, err := checkLogs(o.FS, o.Dir)
	if err != nil {
		return nil, err
	}
	po.Lock = lock
	corrupt := &corruptFiles{log: o.Logger}
	var el pebble.EventListener
	if po.EventListener != nil {
		el = *po.EventListener
	}
	el.DataCorruption = corrupt.add
	po.EventListener = &el
	db, err := pebble.Open(o.Dir, po)
	if err != nil && tail != "" {
		// Pebble read the MANIFEST up to an unreadable last record, taking
		// it for a torn write; what it then misses is named after a table.
		return nil, fmt.Errorf("%w (%s)", corrupt.wrap(err), tail)
	}
	if err != nil {
		return nil, corrupt.wrap(err)
	}
	if !o.SkipVerify {
		if err := readAll(db); err != nil {
			db.Close()
			return nil, corrupt.wrap(err)
		}
	}
	return db, nil
}

// readAll iterates over every key, so that every block of every table is
// read and its checksum verified.
func readAll(db *pebble.DB) error {
	it, err := db.NewIter(nil)
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
	}
	return errors.Join(it.Error(), it.Close())
}

// corruptFiles collects the files Pebble reports damaged. Pebble reports a
// failed checksum to the listener and returns the error to the reader; the
// default listener stops the process.
type corruptFiles struct {
	log   *slog.Logger
	mu    sync.Mutex // guards paths
	paths []string
}

func (c *corruptFiles) add(info pebble.DataCorruptionInfo) {
	c.log.Error("damaged data file", "path", info.Path, "err", info.Details)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.paths, info.Path) {
		c.paths = append(c.paths, info.Path)
	}
}

// wrap names the damaged files in err, if Pebble reported any.
func (c *corruptFiles) wrap(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.paths) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s: %w", errCorruptFile, strings.Join(c.paths, ", "), err)
}

// checkLogs checks the current MANIFEST and the newest WAL of dir. A
// directory without them (a new store) passes. tail describes an unreadable
// last MANIFEST record, which may be a torn write or damage.
func checkLogs(fs vfs.FS, dir string) (tail string, err error) {
	manifest, err := atomicfs.ReadMarker(fs, dir, "manifest")
	if err != nil {
		return "", fmt.Errorf("find the MANIFEST in %s: %w", dir, err)
	}
	if manifest != "" {
		path := fs.PathJoin(dir, manifest)
		at, err := checkFile(fs, path, manifestChunks)
		if err != nil {
			return "", err
		}
		if at >= 0 {
			tail = fmt.Sprintf("the last record of %s, at offset %d, is unreadable: damaged, or torn by a crash", path, at)
		}
	}
	names, err := fs.List(dir)
	if err != nil {
		return "", err
	}
	newest, num := "", uint64(0)
	for _, name := range names {
		base, ok := strings.CutSuffix(name, ".log")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(base, 10, 64)
		if err != nil { // not a WAL Pebble would replay (e.g. a failover segment)
			continue
		}
		if newest == "" || n > num {
			newest, num = name, n
		}
	}
	if newest == "" {
		return tail, nil
	}
	_, err = checkFile(fs, fs.PathJoin(dir, newest), walChunks(uint32(num)))
	return tail, err
}

// checkFile checks a WAL or MANIFEST, naming it in its error. tail is the
// offset of an invalid chunk that nothing shows to be damage (a torn tail,
// or the end of a reused WAL's data); -1 if none.
func checkFile(fs vfs.FS, path string, kind chunkKind) (tail int64, err error) {
	f, err := fs.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	d, err := findDamage(f, kind)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if d.at >= 0 && d.why != "" {
		return 0, fmt.Errorf("%w: %s at offset %d (%s)", errCorruptFile, path, d.at, d.why)
	}
	return d.at, nil
}

// The record format Pebble writes its WAL and MANIFEST in (pebble/record):
// 32 KiB blocks of chunks, none crossing a block; a chunk is a header —
// checksum (4 bytes), payload length (2), encoding (1), then for the
// recyclable encodings the log number (4), and for the WAL sync encodings
// also the offset synced when the chunk was written (8) — and its payload.
// The checksum covers the header from the encoding on, and the payload. A
// cleanly closed WAL ends with an empty recyclable chunk, unchecksummed,
// naming the next log.
const (
	recordBlock       = 32 << 10
	legacyHeader      = 7
	recyclableHeader  = 11
	walSyncHeader     = 19
	encRecyclableFull = 5
	encWALSyncFirst   = 9
	encWALSyncLast    = 12
	encLegacyFull     = 1
	encLegacyFirst    = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunkSum is the masked CRC-32C the record format stores.
func chunkSum(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// chunkKind says how to read one kind of file.
type chunkKind struct {
	logNum uint32 // the WAL's number; 0 for the MANIFEST
	wal    bool
}

var manifestChunks = chunkKind{}

func walChunks(num uint32) chunkKind { return chunkKind{logNum: num, wal: true} }

// headerSize is the header size of an encoding, 0 if invalid for kind.
func (k chunkKind) headerSize(enc byte) int {
	switch {
	case enc >= 1 && enc <= 4:
		return legacyHeader
	case k.wal && enc >= 5 && enc <= 8:
		return recyclableHeader
	case k.wal && enc >= encWALSyncFirst && enc <= encWALSyncLast:
		return walSyncHeader
	}
	return 0
}

// chunk is what a header at b[pos] says: its header size and payload
// length, whether it fits in b and belongs to this log, and whether its
// checksum is right.
type chunk struct {
	hs, length   int
	fits, sumsOK bool
}

func (k chunkKind) chunkAt(b []byte, pos int) chunk {
	if pos+legacyHeader > len(b) {
		return chunk{}
	}
	c := chunk{hs: k.headerSize(b[pos+6]), length: int(binary.LittleEndian.Uint16(b[pos+4:]))}
	if c.hs == 0 || pos+c.hs+c.length > len(b) {
		return c
	}
	if c.hs > legacyHeader && binary.LittleEndian.Uint32(b[pos+7:]) != k.logNum {
		return c
	}
	c.fits = true
	c.sumsOK = chunkSum(b[pos+6:pos+c.hs+c.length]) == binary.LittleEndian.Uint32(b[pos:])
	return c
}

// isTrailer reports whether b[pos] is the end-of-file trailer of this WAL.
func (k chunkKind) isTrailer(b []byte, pos int) bool {
	return k.wal && pos+recyclableHeader <= len(b) && b[pos+6] == encRecyclableFull &&
		binary.LittleEndian.Uint32(b[pos:]) == 0 && binary.LittleEndian.Uint16(b[pos+4:]) == 0 &&
		binary.LittleEndian.Uint32(b[pos+7:]) == k.logNum+1
}

// damage is what findDamage found: the first invalid chunk (at; -1 if
// none), and why it is damage rather than a torn tail ("" if nothing shows).
type damage struct {
	at  int64
	why string
}

// findDamage reads chunks in order, as Pebble's reader does, to the first
// invalid one or the end. For an invalid chunk it looks for proof of damage:
// one flipped bit that would make it valid, or a later chunk showing that it
// had been synced.
func findDamage(r io.Reader, k chunkKind) (damage, error) {
	buf := make([]byte, recordBlock)
	d := damage{at: -1}
	for blk := int64(0); ; blk++ {
		n, err := io.ReadFull(r, buf)
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return d, err
		}
		b, from := buf[:n], 0
		if d.at < 0 {
			pos, end := k.validPrefix(b)
			if end {
				return d, nil
			}
			if pos < 0 {
				continue // the whole block is valid
			}
			d.at, from = blk*recordBlock+int64(pos), pos+1
			if k.oneBitOff(b, pos) {
				d.why = "one flipped bit would make its checksum right"
				return d, nil
			}
		}
		for p := from; p < n; p++ {
			if k.proves(b, p, d.at) {
				if k.wal {
					d.why = fmt.Sprintf("the WAL chunk at offset %d says it had been synced", blk*recordBlock+int64(p))
				} else {
					d.why = fmt.Sprintf("the MANIFEST record at offset %d was written after it", blk*recordBlock+int64(p))
				}
				return d, nil
			}
		}
		if n < recordBlock {
			return d, nil
		}
	}
}

// validPrefix walks the chunks of a block. It returns the offset of the
// first invalid chunk (-1 if none), or end when the log ends cleanly in the
// block (a WAL's end-of-file trailer).
func (k chunkKind) validPrefix(b []byte) (invalid int, end bool) {
	pos := 0
	for pos+legacyHeader <= len(b) {
		if b[pos+6] == 0 && binary.LittleEndian.Uint32(b[pos:]) == 0 && binary.LittleEndian.Uint16(b[pos+4:]) == 0 {
			// Zeros: the block's padding if no header fits after pos,
			// else the end of the written data (or damage).
			if pos+walSyncHeader > len(b) && allZero(b[pos:]) {
				return -1, false
			}
			return pos, false
		}
		if k.isTrailer(b, pos) {
			return -1, true
		}
		c := k.chunkAt(b, pos)
		if !c.fits || !c.sumsOK {
			return pos, false
		}
		pos += c.hs + c.length
	}
	if len(b) == recordBlock || pos == len(b) {
		return -1, false // a block's last bytes, too few for a header, are padding
	}
	return pos, false
}

// proves reports whether a chunk starting at b[p] shows that the chunk at
// file offset damaged had been written completely and synced.
func (k chunkKind) proves(b []byte, p int, damaged int64) bool {
	c := k.chunkAt(b, p)
	if !c.fits || !c.sumsOK {
		return false
	}
	enc := b[p+6]
	if !k.wal {
		// The MANIFEST is synced after every record, so a later record's
		// start (a full or first chunk) proves the damaged one was synced.
		return enc == encLegacyFull || enc == encLegacyFirst
	}
	// Only a checksummed chunk is proof. (The trailer a clean close writes
	// has no checksum: its 11 bytes turn up inside other chunks' payloads.)
	if enc < encWALSyncFirst || enc > encWALSyncLast {
		return false
	}
	return binary.LittleEndian.Uint64(b[p+11:]) > uint64(damaged)
}

// oneBitOff reports whether the invalid chunk at b[pos] would be a valid
// chunk of this log with one bit flipped, in its header or anywhere under
// its checksum — unless the flip sets a bit that a lost write explains
// (lostBit).
func (k chunkKind) oneBitOff(b []byte, pos int) bool {
	hdr := min(walSyncHeader, len(b)-pos)
	if !k.wal {
		hdr = min(legacyHeader, len(b)-pos)
	}
	for i := pos; i < pos+hdr; i++ {
		for bit := range 8 {
			b[i] ^= 1 << bit
			c := k.chunkAt(b, pos)
			b[i] ^= 1 << bit
			if c.fits && c.sumsOK && !lostBit(b, i) {
				return true
			}
		}
	}
	c := k.chunkAt(b, pos)
	if !c.fits {
		return false
	}
	i, _ := flipAt(b[pos+6:pos+c.hs+c.length], binary.LittleEndian.Uint32(b[pos:]))
	return i >= 0 && !lostBit(b, pos+6+i)
}

// lostBit reports whether a bit missing from b[i] is explained by a write
// that did not reach the disk: b reads zero from b[i] to the end of its
// 512-byte sector. A torn or lost write loses whole sectors, each of which
// then reads as it was last synced: its earlier bytes, then zeros (a WAL is
// zero-filled ahead of its records); a set byte after b[i] in the sector
// shows that the sector was written. b starts at a block boundary, which
// is a sector boundary too.
func lostBit(b []byte, i int) bool {
	return allZero(b[i:min(len(b), i|511+1)])
}

// flipAt finds the bit of data whose flip would give it the masked
// checksum sum: its byte's index (-1 if there is none) and its number.
// CRCs are linear: for messages of one length, crc(a) ^ crc(b) is the
// zero-initialized CRC of a ^ b, so a flip of bit j changes the CRC by the
// CRC of a message holding only that bit; those are computed for every
// position in one pass from the end. (A CRC-32 tells every single-bit
// error in a chunk apart, so the bit found is the only one.)
func flipAt(data []byte, sum uint32) (int, int) {
	x := sum - 0xa282ead8
	want := (x<<15 | x>>17) ^ crc32.Checksum(data, castagnoli)
	if want == 0 {
		return -1, 0
	}
	var v [8]uint32
	for bit := range v {
		v[bit] = castagnoli[1<<bit]
	}
	for j := len(data) - 1; j >= 0; j-- {
		for bit := range v {
			if v[bit] == want {
				return j, bit
			}
			v[bit] = castagnoli[byte(v[bit])] ^ v[bit]>>8
		}
	}
	return -1, 0
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
