// Package memstore is the in-memory ThreadStore (with its Leases) and
// TokenStore, shared by the memory store adapter (adapters/store/memory),
// which the gateway uses, and the fakes (adapters/fake), which add outages
// and records to it. It lives here, not in either, so that no adapter
// imports another.
//
// State is lost when the process ends and is not shared with other
// processes.
package memstore
