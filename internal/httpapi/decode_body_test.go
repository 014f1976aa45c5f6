package httpapi

// Tests of how a request body is read: readBody alone, and through decode.

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// TestDecodeReservesLittleForALyingLength: a request that declares a large
// Content-Length and sends two bytes must not make decode reserve much
// (a first version reserved 1 MiB: with the default 32 MiB limit, every
// connection declaring that much and trickling bytes held 1 MiB for up to
// the read timeout).
func TestDecodeReservesLittleForALyingLength(t *testing.T) {
	a := &api{maxBytes: 32 << 20}
	var v struct{}
	measure := func() uint64 {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
		r.Header.Set("Content-Type", "application/json")
		r.ContentLength = 32 << 20 // declared, not sent
		w := httptest.NewRecorder()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_ = a.decode(w, r, &v) // a short body: whatever it answers, the room was taken
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	measure()
	if n := measure(); n > 64<<10 {
		t.Errorf("decode of a 2-byte body that declared 32 MiB allocated %d bytes", n)
	}
}

// TestDecodeTooLargeWhateverDeclared: a body past the limit answers 413
// too_large whatever length it declared, and one at the limit is read.
func TestDecodeTooLargeWhateverDeclared(t *testing.T) {
	const limit = 1 << 10
	a := &api{maxBytes: limit}
	for _, real := range []int{limit + 1, 2 * limit, 3 << 20} {
		for _, declared := range []int64{-1, 0, 1, limit - 1, limit, limit + 1, int64(real), 1 << 40} {
			body := `{"x":"` + strings.Repeat("a", real-8) + `"}`
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.ContentLength = declared
			w := httptest.NewRecorder()
			var v map[string]string
			err := a.decode(w, r, &v)
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusRequestEntityTooLarge {
				t.Errorf("real %d, declared %d: %v, want a 413", real, declared, err)
			}
		}
	}
	// And at the limit exactly, whatever is declared, it is read.
	body := `{"x":"` + strings.Repeat("a", limit-8) + `"}`
	for _, declared := range []int64{-1, 0, 1, limit - 1, limit, limit + 1, 1 << 40} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.ContentLength = declared
		var v map[string]string
		if err := a.decode(httptest.NewRecorder(), r, &v); err != nil || len(v["x"]) != limit-8 {
			t.Errorf("declared %d: %v", declared, err)
		}
	}
}

// TestReadBody: whatever the hint says, readBody returns exactly what the
// reader held, and the reader's error.
func TestReadBody(t *testing.T) {
	t.Parallel()
	data := strings.Repeat("0123456789", 100) // 1,000 bytes
	for _, hint := range []int64{-1, 0, 1, 999, 1000, 1001, 5000} {
		for name, r := range map[string]io.Reader{
			"whole":    strings.NewReader(data),
			"one byte": iotest.OneByteReader(strings.NewReader(data)),
			"data+EOF": iotest.DataErrReader(strings.NewReader(data)),
		} {
			got, err := readBody(r, hint)
			if err != nil || string(got) != data {
				t.Errorf("hint %d, %s: %d bytes, %v; want the 1000 bytes", hint, name, len(got), err)
			}
		}
	}
	boom := errors.New("boom")
	for _, hint := range []int64{0, 10, 2000} {
		got, err := readBody(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)), hint)
		if !errors.Is(err, boom) || !bytes.Equal(got, []byte("abc")) {
			t.Errorf("hint %d: %q, %v; want what came before the error, and the error", hint, got, err)
		}
	}
}
