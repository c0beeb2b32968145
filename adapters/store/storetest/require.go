package storetest

import (
	"net"
	"net/url"
	"os"
	"testing"
	"time"
)

// dialTimeout bounds the reachability check of Require.
const dialTimeout = 2 * time.Second

// Require returns the URL of the server that the environment variable env
// names, or fallback when env is empty, after checking that its host:port
// accepts TCP connections. When it does not, the test is skipped with a
// message naming service, address and env, or fails with that message when
// the environment variable CI is "true": in CI a missing service is an
// error, not a reason to skip.
//
// The URL must carry an explicit host:port. Require blocks for at most a
// couple of seconds.
func Require(t testing.TB, service, env, fallback string) string {
	t.Helper()
	raw := os.Getenv(env)
	if raw == "" {
		raw = fallback
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("storetest: %s: %s is not a URL", service, env)
	}
	conn, err := net.DialTimeout("tcp", u.Host, dialTimeout)
	if err != nil {
		msg := service + " is not reachable at " + u.Host + " (set " + env + " to point at a running server): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal("storetest: CI=true and " + msg)
		}
		t.Skip("storetest: skipping: " + msg)
	}
	_ = conn.Close()
	return raw
}

// WithHost returns rawURL with its host:port replaced by addr. It fails the
// test if rawURL does not parse.
func WithHost(t testing.TB, rawURL, addr string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("storetest: parse url: %v", err)
	}
	u.Host = addr
	return u.String()
}

// ClosedAddr returns a loopback address on which nothing listens: it
// listens on a free port and closes the listener again.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("storetest: listen: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
