package fake

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

var _ ports.CallControl = (*CallControl)(nil)

// Transfer is a transfer a CallControl accepted.
type Transfer struct {
	CallID, To, CallerID string
}

// CallControl is a fake ports.CallControl that records the calls it ends
// and transfers. Every call id names a call in progress until End ends it,
// or the test hangs it up (HangUp) or makes it unknown (Forget). Create one
// with NewCallControl.
type CallControl struct {
	mu        sync.Mutex
	over      map[string]bool // ended or hung up: true; unknown: false
	ended     []string
	transfers []Transfer
	errs      queue[error]
	delay     time.Duration
	changed   changes
}

// NewCallControl returns a CallControl that acts on every call at once.
func NewCallControl() *CallControl { return &CallControl{over: make(map[string]bool)} }

// End records callID as ended and ends the call. It waits for the delay
// set with SetDelay, until ctx is done, then fails with ctx's error;
// with ports.ErrRejected for an empty callID; with ports.ErrNotFound for
// a call that is over or unknown; with the next error queued by FailNext.
func (c *CallControl) End(ctx context.Context, callID string) error {
	return c.act(ctx, "end call", callID, func() {
		c.ended = append(c.ended, callID)
		c.over[callID] = true
	})
}

// Transfer records the transfer of callID to to with callerID; the call
// goes on (the provider dials). It fails like End, and with
// ports.ErrRejected when to is neither an E.164 number nor a sip: address
// or callerID is not an E.164 number.
func (c *CallControl) Transfer(ctx context.Context, callID, to, callerID string) error {
	if !domain.IsE164(to) && !domain.IsSIPAddress(to) {
		return fmt.Errorf("fake: transfer call: %q is neither an E.164 number nor a sip: address: %w", to, ports.ErrRejected)
	}
	if !domain.IsE164(callerID) {
		return fmt.Errorf("fake: transfer call: caller id %q is not an E.164 number: %w", callerID, ports.ErrRejected)
	}
	return c.act(ctx, "transfer call", callID, func() {
		c.transfers = append(c.transfers, Transfer{CallID: callID, To: to, CallerID: callerID})
	})
}

// act waits for the delay, checks ctx, callID and the call's state, takes
// the next scripted error, and else runs record under the lock.
func (c *CallControl) act(ctx context.Context, op, callID string, record func()) error {
	c.mu.Lock()
	delay := c.delay
	c.mu.Unlock()
	if err := sleep(ctx, delay); err != nil {
		return fmt.Errorf("fake: %s: %w", op, err)
	}
	if err := errCheck(ctx, op); err != nil {
		return err
	}
	if callID == "" {
		return fmt.Errorf("fake: %s: no call id: %w", op, ports.ErrRejected)
	}
	c.mu.Lock()
	if over, set := c.over[callID]; set {
		c.mu.Unlock()
		what := "is over"
		if !over {
			what = "is unknown"
		}
		return fmt.Errorf("fake: %s: call %s %s: %w", op, callID, what, ports.ErrNotFound)
	}
	if err, ok := c.errs.pop(); ok {
		c.mu.Unlock()
		return fmt.Errorf("fake: %s: %w", op, err)
	}
	record()
	c.mu.Unlock()
	c.changed.notify()
	return nil
}

// HangUp ends callID from the caller's side: End and Transfer then fail
// with ports.ErrNotFound.
func (c *CallControl) HangUp(callID string) { c.setOver(callID, true) }

// Forget makes callID unknown: End and Transfer then fail with
// ports.ErrNotFound.
func (c *CallControl) Forget(callID string) { c.setOver(callID, false) }

func (c *CallControl) setOver(callID string, over bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.over[callID] = over
}

// FailNext makes the next End or Transfer of a call in progress fail with
// err (for example ports.ErrUnavailable).
func (c *CallControl) FailNext(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs.push(err)
}

// RejectNext makes the next End or Transfer of a call in progress fail
// with ports.ErrRejected.
func (c *CallControl) RejectNext() { c.FailNext(ports.ErrRejected) }

// SetDelay makes every later End and Transfer take at least d.
func (c *CallControl) SetDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delay = d
}

// Ended returns the ids of the calls ended so far, in order.
func (c *CallControl) Ended() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ended)
}

// Transfers returns the transfers accepted so far, in order.
func (c *CallControl) Transfers() []Transfer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.transfers)
}

// WaitEnded blocks until at least n calls were ended and returns their ids;
// it returns an error when ctx ends first.
func (c *CallControl) WaitEnded(ctx context.Context, n int) ([]string, error) {
	var got []string
	err := c.changed.until(ctx, func() bool {
		got = c.Ended()
		return len(got) >= n
	})
	return got, err
}

// WaitTransfers blocks until at least n transfers were accepted and
// returns them; it returns an error when ctx ends first.
func (c *CallControl) WaitTransfers(ctx context.Context, n int) ([]Transfer, error) {
	var got []Transfer
	err := c.changed.until(ctx, func() bool {
		got = c.Transfers()
		return len(got) >= n
	})
	return got, err
}
