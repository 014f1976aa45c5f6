package cli

import (
	"context"
	"net/http/httptrace"
	"strings"
	"testing"

	"github.com/courierhq/courier"
)

func TestRecvTable(t *testing.T) {
	t.Parallel()
	url := setup(t)
	id1 := strings.TrimSpace(ok(t, url, "send", "t", "--priority", "1", `{"greeting": "hello\tworld"}`))
	id2 := strings.TrimSpace(ok(t, url, "send", "t", "--base64", strings.Repeat("x", 100)))
	ok(t, url, "send", "t", "--priority", "-1", "-", "--base64") // empty stdin: zero bytes

	out := ok(t, url, "recv", "t", "--max", "10", "--visibility", "1m")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "ID ATTEMPT LEASE BODY" {
		t.Fatalf("recv table:\n%s", out)
	}
	row1, row2 := strings.Fields(lines[1]), strings.Fields(lines[2])
	if row1[0] != id1 || row1[1] != "1" || len(row1[2]) < 8 || strings.Join(row1[3:], " ") != `{"greeting":"hello\tworld"}` {
		t.Errorf("recv row of a JSON body: %q", lines[1])
	}
	if preview := strings.Join(row2[3:], " "); row2[0] != id2 || !strings.HasSuffix(preview, "…") ||
		len([]rune(preview)) != bodyPreviewRunes {
		t.Errorf("recv row of a long body: %q", lines[2])
	}
	// The lease printed is one ack takes.
	if out := ok(t, url, "ack", "t", row1[2]); out != "acknowledged 1\n" {
		t.Errorf("ack of a lease from the table: %q", out)
	}
}

func TestRecvAck(t *testing.T) {
	t.Parallel()
	url := setup(t)
	ok(t, url, "send", "q", `"a"`)
	ok(t, url, "send", "q", `"b"`)
	var rr courier.ReceiveResult
	decode(t, ok(t, url, "recv", "q", "--max", "5", "--ack", "--json"), &rr)
	if len(rr.Messages) != 2 {
		t.Fatalf("recv --ack --json = %+v", rr)
	}
	var q courier.Queue
	decode(t, ok(t, url, "queue", "get", "q", "--json"), &q)
	if q.Stats.AckedTotal != 2 || q.Stats.InFlight != 0 || q.Stats.Ready != 0 {
		t.Errorf("after recv --ack, stats = %+v", q.Stats)
	}

	r := courierCmd(t.Context(), t, url, nil, "recv", "q")
	if r.code != 0 || r.stdout != "" || r.stderr != "no messages\n" {
		t.Errorf("recv of an empty queue = %+v", r)
	}
	decode(t, ok(t, url, "recv", "q", "--json"), &rr)
	if rr.Messages == nil || len(rr.Messages) != 0 {
		t.Errorf("recv --json of an empty queue = %+v, want an empty list", rr)
	}
}

// TestRecvInterrupted cancels a long-poll the way SIGINT does in main.
func TestRecvInterrupted(t *testing.T) {
	t.Parallel()
	url := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { cancel() },
	})
	r := courierCmd(ctx, t, url, nil, "recv", "idle", "--wait", "60s")
	if r.code != exitInterrupted || r.stderr != "courier: interrupted\n" {
		t.Errorf("interrupted recv = %+v", r)
	}
}
