package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/testlog"
)

func alive(t *testing.T, l ports.Leases, id string) bool {
	t.Helper()
	ok, err := l.Alive(context.Background(), id)
	require.NoError(t, err)
	return ok
}

// An instance holds its lease for as long as it runs, far beyond one ttl,
// and releases it on Shutdown.
func TestInstanceRenewsAndReleases(t *testing.T) {
	store := fake.NewThreadStore()
	const ttl = 150 * time.Millisecond
	inst := NewInstance(InstanceDeps{Leases: store, TTL: ttl})
	other := NewInstance(InstanceDeps{Leases: store, TTL: ttl})
	defer func() { _ = other.Shutdown(context.Background()) }()
	assert.NotEqual(t, inst.ID(), other.ID(), "every instance has an id of its own")
	assert.True(t, strings.HasPrefix(inst.ID(), "gw-"), inst.ID())
	assert.Equal(t, ttl, inst.TTL())

	require.Eventually(t, func() bool { return alive(t, store, inst.ID()) }, wait, time.Millisecond, "the lease is taken at once")
	time.Sleep(4 * ttl)
	assert.True(t, alive(t, store, inst.ID()), "renewed: still alive four ttls later")

	require.NoError(t, inst.Shutdown(context.Background()))
	assert.False(t, alive(t, store, inst.ID()), "released")
	assert.True(t, alive(t, store, other.ID()), "another instance's lease is untouched")
	require.NoError(t, inst.Shutdown(context.Background()), "a second Shutdown does nothing")
}

// A Shutdown whose context has ended (a drain deadline passed) still
// releases the lease.
func TestInstanceReleasesAfterDeadline(t *testing.T) {
	store := fake.NewThreadStore()
	inst := NewInstance(InstanceDeps{Leases: store})
	require.Eventually(t, func() bool { return alive(t, store, inst.ID()) }, wait, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, inst.Shutdown(ctx))
	assert.False(t, alive(t, store, inst.ID()))
}

// Renewals that fail are logged once (warn), the lease lapsing once
// (error), and the first renewal after the store is back (info); the
// lease is then alive again.
func TestInstanceLogsLapsedLease(t *testing.T) {
	store := fake.NewThreadStore()
	logs := &testlog.Buffer{}
	const ttl = 90 * time.Millisecond
	inst := NewInstance(InstanceDeps{Leases: store, TTL: ttl, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer func() { _ = inst.Shutdown(context.Background()) }()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `msg="instance lease taken"`) }, wait, time.Millisecond)

	store.Down(ports.ErrUnavailable)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `level=ERROR msg="instance lease lapsed`) }, wait, time.Millisecond)
	time.Sleep(3 * ttl) // more failed renewals
	store.Down(nil)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `msg="instance lease renewed again"`) }, wait, time.Millisecond)
	assert.True(t, alive(t, store, inst.ID()))

	out := logs.String()
	assert.Equal(t, 1, strings.Count(out, `msg="instance lease not renewed: trying again"`), "one warning per outage:\n%s", out)
	assert.Equal(t, 1, strings.Count(out, "instance lease lapsed"), "one error per outage:\n%s", out)
	assert.Contains(t, out, "instance_id="+inst.ID())
}
