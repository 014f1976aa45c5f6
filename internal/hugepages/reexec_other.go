//go:build !linux || !cgo

package hugepages

// Reexec does nothing here: glibc's tunable is for Linux, and without cgo
// the store's memory is on the Go heap, which malloc does not hand out.
func Reexec(args []string) (skipped string, err error) {
	return "not Linux with cgo", nil
}
