package pebblestore

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/courierhq/courier/internal/store"
)

// TestVerifyOneBitFromSum: every single flipped bit of a message is
// recognized from its checksum, and two flipped bits are not taken for one.
func TestVerifyOneBitFromSum(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sum := chunkSum(data)
	if oneBitFromSum(data, sum) {
		t.Fatal("an intact message taken for one with a flipped bit")
	}
	for i := range data {
		for bit := range 8 {
			data[i] ^= 1 << bit
			if !oneBitFromSum(data, sum) {
				t.Fatalf("flip of bit %d of byte %d not recognized", bit, i)
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
		if oneBitFromSum(data, sum) {
			t.Fatalf("two flipped bits (bytes %d and %d) taken for one", i, j)
		}
		data[i] ^= 1
		data[j] ^= 0x80
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
