package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any leaves a goroutine running
// (the fake courier commands' output readers, say).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
