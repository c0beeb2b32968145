// Package e2e_test runs the gateway end to end: built by wire.Build from a
// Config with its real adapters (OpenAI REST adapters, the Twilio Messages
// sender, the SQLite thread store), served by its real HTTP server on a
// loopback port, and driven the way Twilio drives it (signed webhooks),
// against the simulators of test/sim.
//
// This file holds the package's only TestMain; test files of every flow
// (messages_*, calls_*) share it.
package e2e_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// gateway is shut down and every simulator closed by its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
