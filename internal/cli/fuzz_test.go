package cli

import (
	"strings"
	"testing"
)

// FuzzArgs runs the command line on arbitrary arguments against an address
// where nothing listens: whatever the input, it must end with a documented
// exit code and never panic. Inputs that could reach a real server (--url)
// or start one (serve) are skipped.
func FuzzArgs(f *testing.F) {
	for _, seed := range []string{
		"queue\x00create\x00q\x00--max-attempts\x00-1",
		"send\x00q\x00-",
		"send\x00q\x00{\"a\":\x00--header\x00=",
		"recv\x00q\x00--max\x009999999999999999999",
		"ack\x00q\x00\x00",
		"nack\x00\x00lease\x00--delay\x00-1h",
		"--json\x00extend\x00q\x00l\x00--visibility\x001ns",
		"queue\x00redrive\x00../x\x00--max\x000",
	} {
		f.Add(seed, "stdin")
	}
	f.Fuzz(func(t *testing.T, joined, stdin string) {
		if strings.Contains(joined, "serve") || strings.Contains(joined, "url") {
			t.Skip()
		}
		r := courierCmd(t.Context(), t, "http://127.0.0.1:1", strings.NewReader(stdin), strings.Split(joined, "\x00")...)
		switch r.code {
		case exitOK, exitFailure, exitUsage, exitUnreachable:
		default:
			t.Errorf("exit %d: %+v", r.code, r)
		}
		if r.code != exitOK && !strings.HasPrefix(r.stderr, "courier: ") {
			t.Errorf("exit %d without a message: %+v", r.code, r)
		}
	})
}
