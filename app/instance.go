package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convgateway/gateway/ports"
)

// DefaultLeaseTTL is how long an instance's lease lasts without being
// renewed: a gateway that dies counts as stopped, and what it owned may be
// taken over, at most this long after its last renewal. The lease is
// renewed every third of it, so that a renewal or two may fail (a blip of
// the store) before it lapses. Instances sharing a store use the same ttl.
const DefaultLeaseTTL = 15 * time.Second

// releaseTimeout bounds releasing the lease in Shutdown, even after
// Shutdown's context has ended: a released lease lets another gateway take
// over at once what this one leaves unanswered.
const releaseTimeout = 5 * time.Second

// firstRenewTimeout bounds the first renewal, which NewInstance waits for.
const firstRenewTimeout = 2 * time.Second

// InstanceDeps are the dependencies and settings of an Instance.
type InstanceDeps struct {
	// Leases keeps the lease; it must be the store in which the work the
	// instance owns is recorded (the DeliveryLedger, for WhatsApp/SMS
	// deliveries), so that a takeover checks the lease there. Required.
	Leases ports.Leases
	Logger *slog.Logger // nil discards logs
	// TTL is the lease's time to live. Zero means DefaultLeaseTTL.
	TTL time.Duration
}

// Instance is this gateway process's lease (ports.Leases): a random id,
// under which the use cases record the work they take on, and a lease on
// it in the shared store that a goroutine renews every TTL/3 while the
// process runs. Other gateways sharing the store take over what the
// instance owns only once its lease has expired (the process died, or lost
// the store for longer than TTL) or was released (Shutdown). One Instance
// serves every use case of a process.
//
// NewInstance waits for the first renewal, for a moment at most
// (firstRenewTimeout, or a third of the ttl if shorter); a store that does
// not answer by then delays it, and the instance's work taken meanwhile
// counts as unowned until the store answers. A lease that lapses while the
// process lives (the store unreachable for longer than TTL) is logged at
// error level: other gateways may then take over work this one is still
// doing. The instance renews it as soon as the store answers again.
type Instance struct {
	id     string
	leases ports.Leases
	log    *slog.Logger
	ttl    time.Duration

	// renewed is when the last successful renewal started (unix
	// nanoseconds, 0 before the first one): the lease lasts until TTL
	// after that at least.
	renewed atomic.Int64

	ctx    context.Context // cancelled by Shutdown
	cancel context.CancelFunc
	done   chan struct{} // closed when the renewing goroutine has returned
	once   sync.Once
}

// NewInstance makes an instance with a fresh random id, takes its lease
// (waiting for a moment at most: see Instance) and starts the goroutine
// that renews it. Call Shutdown when the process stops, after the use
// cases that use it have drained.
func NewInstance(d InstanceDeps) *Instance {
	if d.TTL <= 0 {
		d.TTL = DefaultLeaseTTL
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+)
	ctx, cancel := context.WithCancel(context.Background())
	i := &Instance{
		id:     "gw-" + hex.EncodeToString(b),
		leases: d.Leases,
		ttl:    d.TTL,
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	i.log = d.Logger.With("instance_id", i.id)
	first := make(chan struct{})
	go i.renewLoop(first)
	select {
	case <-first:
	case <-time.After(min(firstRenewTimeout, i.ttl/3)):
	}
	return i
}

// ID is the instance's id, under which its work is recorded.
func (i *Instance) ID() string { return i.id }

// TTL is the lease's time to live.
func (i *Instance) TTL() time.Duration { return i.ttl }

// Held reports whether the instance holds its lease, as far as it knows:
// a renewal that started less than TTL ago succeeded. An instance that
// does not hold its lease must not take over another's work: what it
// takes counts as unowned, and could be taken from it in turn.
func (i *Instance) Held() bool {
	last := i.renewed.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < i.ttl
}

// renewLoop renews the lease at once, then every TTL/3, until Shutdown.
// It logs the first failure of a series, the lease lapsing (once per
// series) and the first renewal after failures.
func (i *Instance) renewLoop(first chan<- struct{}) {
	defer close(i.done)
	defer func() {
		if first != nil {
			close(first)
		}
	}()
	every := i.ttl / 3
	var lastOK time.Time // zero until the first renewal
	failing, lapsed := false, false
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-i.ctx.Done():
			return
		case <-t.C:
		}
		started := time.Now()
		ctx, cancel := context.WithTimeout(i.ctx, every)
		err := i.leases.Renew(ctx, i.id, i.ttl)
		cancel()
		switch {
		case err != nil && i.ctx.Err() != nil:
			return
		case err != nil && !failing:
			i.log.Warn("instance lease not renewed: trying again", "retry_in", every.String(), "err", err)
			failing = true
		case err != nil && !lapsed && !lastOK.IsZero() && time.Since(lastOK) > i.ttl:
			i.log.Error("instance lease lapsed: other gateways may take over the messages this one is still answering, which may then be answered twice",
				"unrenewed_for", time.Since(lastOK).Round(time.Millisecond).String(), "err", err)
			lapsed = true
		case err != nil:
		case lastOK.IsZero():
			i.log.Info("instance lease taken", "ttl", i.ttl.String())
		case failing:
			i.log.Info("instance lease renewed again", "unrenewed_for", time.Since(lastOK).Round(time.Millisecond).String())
		}
		if err == nil {
			i.renewed.Store(started.UnixNano())
			lastOK, failing, lapsed = time.Now(), false, false
		}
		if first != nil {
			close(first)
			first = nil
		}
		t.Reset(every)
	}
}

// Shutdown stops renewing the lease and releases it, so that other
// gateways may take over at once what this one leaves unanswered. Call it
// after the use cases that use the instance have drained. The release is
// bounded by releaseTimeout, and tried even when ctx has ended (a process
// about to exit has nothing better to do). Its failure is logged, not
// returned: the lease then expires by itself within TTL, which delays
// takeovers and loses nothing. It returns nil. Safe to call more than
// once; only the first call does anything.
func (i *Instance) Shutdown(ctx context.Context) error {
	i.once.Do(func() {
		i.cancel()
		<-i.done
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := i.leases.Release(rctx, i.id); err != nil {
			i.log.Warn("instance lease not released: it expires by itself", "ttl", i.ttl.String(), "err", err)
		}
	})
	return nil
}
