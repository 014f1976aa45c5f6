package courier

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func readEvents(t *testing.T, in string) []sseEvent {
	t.Helper()
	r := newSSEReader(strings.NewReader(in))
	var out []sseEvent
	for {
		ev, err := r.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		out = append(out, ev)
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		want     []sseEvent
	}{
		{"one", "id: 1\ndata: {\"a\":1}\n\n", []sseEvent{{id: "1", data: `{"a":1}`}}},
		{"crlf and cr", "id: 1\r\ndata: a\r\n\r\nid: 2\rdata: b\r\r", []sseEvent{{id: "1", data: "a"}, {id: "2", data: "b"}}},
		{"comments and heartbeats", ": keep-alive\n\n: hi\nid: 3\ndata: x\n\n", []sseEvent{{id: "3", data: "x"}}},
		{"multi-line data", "data: a\ndata:b\ndata\n\n", []sseEvent{{data: "a\nb\n"}}},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []sseEvent{{id: "7", data: "a"}, {id: "7", data: "b"}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n", []sseEvent{{id: "1", data: "a"}, {id: "1", data: "b"}}},
		{"event type, unknown fields", "event: task\nretry: 10\nfoo: bar\ndata: a\n\n", []sseEvent{{typ: "task", data: "a"}}},
		{"only one space stripped", "data:  two\n\n", []sseEvent{{data: " two"}}},
		{"unfinished event dropped", "data: a\n\ndata: b\n", []sseEvent{{data: "a"}}},
		{"no data, no event", "id: 1\n\n\n", nil},
	}
	for _, tc := range cases {
		got := readEvents(t, tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: event %d = %+v, want %+v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}

func TestSSEReaderLineLimit(t *testing.T) {
	t.Parallel()
	r := newSSEReader(io.MultiReader(strings.NewReader("data: "), zeros{}))
	if _, err := r.next(); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("an endless line: %v, want an error", err)
	}
}

// zeros is an endless stream of '0'.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

// FuzzSSEReader: any stream parses without panic into events whose data
// holds no CR, and events written in the format come back as written.
func FuzzSSEReader(f *testing.F) {
	f.Add("id: 1\ndata: {}\n\n", "x")
	f.Add(": c\r\n\r\ndata\rdata: a\r\n\n", "")
	f.Add("id: \x00\n\n", "a\x00b")
	f.Fuzz(func(t *testing.T, stream, data string) {
		r := newSSEReader(strings.NewReader(stream))
		for {
			ev, err := r.next()
			if err != nil {
				break
			}
			if strings.ContainsRune(ev.data, '\r') || strings.ContainsRune(ev.id, '\r') || strings.ContainsRune(ev.id, '\n') {
				t.Fatalf("event %+v holds a line break", ev)
			}
		}
		if strings.ContainsAny(data, "\r\n") {
			return
		}
		r = newSSEReader(strings.NewReader(stream + "\n\n: x\nid: 9\ndata:" + " " + data + "\n\n"))
		var last sseEvent
		for {
			ev, err := r.next()
			if err != nil {
				break
			}
			last = ev
		}
		if last.data != data || last.id != "9" {
			t.Fatalf("last event %+v, want data %q id 9", last, data)
		}
	})
}
