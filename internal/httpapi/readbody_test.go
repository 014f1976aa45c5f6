package httpapi

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

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
