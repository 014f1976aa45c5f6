package bench

import (
	"strings"
	"testing"
)

// TestWriteTableExtras: the extras print as people read them: times in
// ms, sizes in MiB, and counts by name as the params line does, in name
// order, not as a Go map.
func TestWriteTableExtras(t *testing.T) {
	t.Parallel()
	r := &Result{Workload: "w1", Unit: "messages", Extra: map[string]any{
		"requests":       map[string]int64{"receive": 2304, "ack": 20, "messages": 1},
		"send_p99_ms":    2.5,
		"rss_peak_bytes": int64(3 << 20),
	}}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"requests        ack 20 · messages 1 · receive 2,304\n",
		"send_p99_ms     2.500 ms\n",
		"rss_peak_bytes  3.0 MiB (3,145,728 bytes)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
