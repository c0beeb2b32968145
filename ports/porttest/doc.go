// Package porttest holds one conformance suite per port. Every
// implementation of a port, the fakes and the real adapters alike, runs its
// port's suite from its own test in a few lines:
//
//	func TestConformance(t *testing.T) {
//		porttest.ThreadStore(t, func(t *testing.T) ports.ThreadStore { return memory.NewThreadStore() })
//	}
//
// The suites are ThreadStore, DeliveryLedger, Leases, UserLocks, TokenStore,
// SpeechModel, TelephonyChannel, ChatAssistant, MessageSender and
// CallControl; an adapter that implements several ports runs the suite of
// each. Each takes a factory
// so that every subtest gets fresh state, runs its subtests in parallel, and
// bounds every blocking step with a deadline so that a hung implementation
// fails instead of stalling. The store suites use random user ids, keys,
// instance ids and call sids, so that the stores of one run may share a
// database or cache server (each DeliveryLedger subtest still needs state of
// its own: see DeliveryLedger).
//
// Ports whose behaviour depends on a remote peer (a speech model, a
// telephony stream, an assistant, a message provider) are tested together
// with a scriptable Peer: the fake's own script, or a simulator on loopback
// for a real adapter.
//
// UserLocks that can count the callers waiting for a lock should
// implement LockObserver: the FIFO subtests then queue waiters one at a time
// by observing the queue instead of sleeping.
package porttest
