package courier_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: an
// unclosed response body or long-poll would show up here.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
