package storetest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/courierhq/courier/internal/store"
	"github.com/courierhq/courier/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestReference runs the suite against memStore, the reference model, to
// check that the suite's expectations hold together.
func TestReference(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return newMemStore() })
}
