package pebblestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// TestVerifyFlipAt: every single flipped bit of a message is found from
// its checksum, and two flipped bits are not taken for one.
func TestVerifyFlipAt(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sum := chunkSum(data)
	if i, _ := flipAt(data, sum); i >= 0 {
		t.Fatal("an intact message taken for one with a flipped bit")
	}
	for i := range data {
		for bit := range 8 {
			data[i] ^= 1 << bit
			if j, b := flipAt(data, sum); j != i || b != bit {
				t.Fatalf("flip of bit %d of byte %d found at bit %d of byte %d", bit, i, b, j)
			}
			data[i] ^= 1 << bit
		}
	}
	for range 1000 {
		i, j := rng.IntN(len(data)), rng.IntN(len(data))
		if i == j {
			continue
		}
		data[i] ^= 1
		data[j] ^= 0x80
		if k, _ := flipAt(data, sum); k >= 0 {
			t.Fatalf("two flipped bits (bytes %d and %d) taken for one", i, j)
		}
		data[i] ^= 1
		data[j] ^= 0x80
	}
}

// TestVerifyTornSingleBit: a torn write that loses a chunk's last bytes,
// which held a single set bit, differs from what was written by one bit,
// but only by zeros to its sector's end, as any lost write: it is not
// taken for damage. A flipped bit with written data after it in its sector
// still is.
func TestVerifyTornSingleBit(t *testing.T) {
	t.Parallel()
	const logNum = 7
	chunkBlock := func(payload []byte) []byte {
		b := make([]byte, recordBlock)
		b[6] = encWALSyncFirst // a whole record in one chunk
		binary.LittleEndian.PutUint16(b[4:], uint16(len(payload)))
		binary.LittleEndian.PutUint32(b[7:], logNum)
		binary.LittleEndian.PutUint64(b[11:], 0)
		copy(b[walSyncHeader:], payload)
		binary.LittleEndian.PutUint32(b[0:], chunkSum(b[6:walSyncHeader+len(payload)]))
		return b
	}
	damaged := func(b []byte) string {
		d, err := findDamage(bytes.NewReader(b), walChunks(logNum))
		if err != nil {
			t.Fatal(err)
		}
		return d.why
	}
	payload := []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x00, 0x00, 0x10}
	end := walSyncHeader + len(payload)
	if why := damaged(chunkBlock(payload)); why != "" {
		t.Fatalf("an intact chunk taken for damage: %s", why)
	}
	torn := chunkBlock(payload)
	torn[end-1] = 0 // the write's last byte lost: zeros, as the file holds past what reached the disk
	if why := damaged(torn); why != "" {
		t.Fatalf("a torn tail whose lost bytes held one set bit taken for damage: %s", why)
	}
	flipped := chunkBlock(payload)
	flipped[walSyncHeader+1] ^= 0x04 // bytes written after it survive
	if why := damaged(flipped); why != "one flipped bit would make its checksum right" {
		t.Fatalf("a flipped bit before written data not taken for damage (%q)", why)
	}
	cleared := chunkBlock(payload)
	cleared[walSyncHeader+4] ^= 0x01 // 0x55 -> 0x54: a cleared bit, with set bits after it
	if why := damaged(cleared); why == "" {
		t.Fatal("a cleared bit followed by written data not taken for damage")
	}

	// A chunk across a sector boundary (512): the first sector's last write
	// lost, the next sector's kept, as writes that reach the disk out of
	// order leave them. The lost bytes held one set bit.
	long := make([]byte, 600)
	for i := range long {
		long[i] = byte(i%251 + 1)
	}
	const lost = 505 // from here to 512 the sector reads zero once its write is lost
	for i := lost - walSyncHeader; i < 512-walSyncHeader; i++ {
		long[i] = 0
	}
	long[lost-walSyncHeader] = 0x08
	hole := chunkBlock(long)
	hole[lost] = 0
	if why := damaged(hole); why != "" {
		t.Fatalf("a lost write whose bytes held one set bit, later sectors kept, taken for damage: %s", why)
	}
	inner := chunkBlock(long)
	inner[lost-1] ^= 0x02 // set bits follow it in its sector
	if why := damaged(inner); why == "" {
		t.Fatal("a flipped bit with written data after it in its sector not taken for damage")
	}

	// A chunk's last bit cleared, with the next chunk written after it in
	// the same sector: that sector was written, so this is damage (as a
	// torn tail it would drop both chunks).
	two := chunkBlock(payload)
	next := chunkBlock([]byte{0x66, 0x77})
	copy(two[end:], next[:walSyncHeader+2])
	two[end-1] = 0
	if why := damaged(two); why != "one flipped bit would make its checksum right" {
		t.Fatalf("a cleared last bit with the next chunk written after it in its sector not taken for damage (%q)", why)
	}
}

// TestVerifyTornTail: what a crash leaves at the end of the newest WAL — the
// file cut anywhere, or its tail zeroed — is a torn tail, not damage: the
// store opens.
func TestVerifyTornTail(t *testing.T) {
	t.Parallel()
	img, _ := corruptFixture(t)
	wal := newestWAL(t, img)
	whole, err := img.UnsafeGetFileDataBuffer("db/" + wal)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 25 {
		cut := rng.IntN(len(whole))
		for _, zero := range []bool{false, true} {
			fs := copyMem(t, img)
			f, err := fs.Create("db/"+wal, vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			b := append([]byte(nil), whole[:cut]...)
			if zero {
				b = append(b, make([]byte, len(whole)-cut)...)
			}
			if _, err := f.Write(b); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := Open(Options{Dir: "db", FS: fs, FreeBytes: plenty, CacheBytes: 1 << 20})
			if err != nil {
				t.Fatalf("WAL %s cut at %d of %d (zero-filled %v): %v", wal, cut, len(whole), zero, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// BenchmarkOpenVerify measures Open of a store on disk holding
// COURIER_VERIFY_MESSAGES messages (default 1,000,000, 100-byte bodies),
// with and without reading every key at open:
//
//	go test -run '^$' -bench OpenVerify -benchtime 3x ./internal/store/pebblestore/
func BenchmarkOpenVerify(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("COURIER_VERIFY_MESSAGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("COURIER_VERIFY_MESSAGES=%q: %v", v, err)
		}
	}
	dir := b.TempDir()
	s, err := Open(Options{Dir: dir, FreeBytes: plenty})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.CreateQueue(ctx, &store.CreateQueueParams{Name: "q", Config: unlimited("q"), Now: crashBase}); err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 100)
	msgs := make([]store.NewMessage, 1000)
	for i := range msgs {
		msgs[i] = store.NewMessage{Body: body, Kind: store.BodyBinary}
	}
	for sent := 0; sent < n; sent += len(msgs) {
		if _, err := s.Send(ctx, &store.SendParams{Queue: "q", Messages: msgs[:min(len(msgs), n-sent)], Now: crashBase}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	size := int64(0)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			size += fi.Size()
		}
	}
	b.Logf("%d messages, %d MB on disk", n, size>>20)
	for _, skip := range []bool{false, true} {
		b.Run(fmt.Sprintf("SkipVerify=%v", skip), func(b *testing.B) {
			for b.Loop() {
				s, err := Open(Options{Dir: dir, FreeBytes: plenty, SkipVerify: skip})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
