// Package storetest helps the tests of stores backed by a real server
// (PostgreSQL, Redis): it finds the server named by an environment variable,
// skips the test when the server is absent (or fails it when CI=true), and
// offers a loopback TCP proxy that can be stopped and started again to
// simulate the server going away and coming back.
//
// It is test support: only _test files import it.
package storetest
