// Package ports declares the interfaces the gateway's core needs from the
// outside world (driven ports: SpeechModel, TelephonyChannel, MessageSender,
// ChatAssistant, ThreadStore, DeliveryLedger, Leases, UserLocks, TokenStore)
// and the interfaces the core offers
// to the outside world (driving ports: Calls, Messages), together with the
// small value types they exchange and one error vocabulary.
//
// Adapters implement the driven ports and call the driving ports; the app
// package implements the driving ports on top of the driven ones. Every
// implementation of a port must pass that port's conformance suite in
// package porttest.
//
// Conventions for every method in this package, unless its comment says
// otherwise:
//
//   - A method that takes a context blocks at most until the context is done,
//     and then returns an error that wraps ctx.Err().
//   - Errors are wrapped with %w; callers test them with errors.Is against the
//     Err* values of this package.
//   - Error messages never contain secrets (API keys, auth tokens, stream
//     tokens), and they are one line: they end up in log lines (join errors
//     with JoinErrors or fmt.Errorf, never errors.Join).
package ports
