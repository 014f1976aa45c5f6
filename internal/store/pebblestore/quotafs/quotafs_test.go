package quotafs_test

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/store/pebblestore/quotafs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBudget: writes past the budget fail with ENOSPC and write nothing;
// the disk usage reports the budget; removing a file or raising the budget
// makes room again, and wakes WaitFree.
func TestBudget(t *testing.T) {
	t.Parallel()
	fs := quotafs.New(vfs.NewMem(), 100)
	f, err := fs.Create("a", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if u, err := fs.GetDiskUsage("a"); err != nil || u.AvailBytes != 40 || u.UsedBytes != 60 || u.TotalBytes != 100 {
		t.Fatalf("usage %+v, %v; want 40 of 100 free", u, err)
	}
	n, err := f.Write(make([]byte, 50))
	if n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the budget: %d bytes, %v; want 0 and ENOSPC", n, err)
	}
	if fs.Refused() != 1 {
		t.Fatalf("refused %d writes, want 1", fs.Refused())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	waited := make(chan error)
	go func() { waited <- fs.WaitFree(context.Background(), 90) }()
	if err := fs.Rename("a", "b"); err != nil {
		t.Fatal(err)
	}
	if fs.Used() != 60 {
		t.Fatalf("used %d after a rename, want 60", fs.Used())
	}
	if err := fs.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("WaitFree: %v", err)
	}
	if fs.Used() != 0 || fs.Peak() != 60 {
		t.Fatalf("used %d, peak %d; want 0 and 60", fs.Used(), fs.Peak())
	}

	g, err := fs.Create("c", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Write(make([]byte, 150)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write of 150 bytes in a budget of 100: %v; want ENOSPC", err)
	}
	fs.SetLimit(200)
	if _, err := g.Write(make([]byte, 150)); err != nil {
		t.Fatalf("write after the budget was raised: %v", err)
	}
}
