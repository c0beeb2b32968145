package ports

import (
	"context"
	"time"
)

// DeliveryLedger records the webhook deliveries of inbound messages the
// gateway takes, which gateway instance took each (its owner), and which
// were answered, so that a delivery is answered once and none is lost
// silently.
//
// A delivery is recorded with FirstSeen under the id of the instance that
// takes it, and marked Delivered once it is answered. A repeat of a
// delivery (Twilio retries a webhook whose answer it never got) finds its
// key recorded. A delivery whose owner died before answering it (a crash,
// a kill) is taken over with TakeOver by the instance a repeat reaches,
// once the owner is known to have stopped; one that no repeat rescues is
// found with Abandoned by another process or by the next start. The ledger
// keeps the instances' leases (Leases) beside the deliveries, so that an
// owner's lease and its delivery are checked in one atomic step.
//
// Implementations are safe for concurrent use, and the guarantees below
// hold across several gateway processes sharing one database when the
// implementation is backed by a shared database (SQLite is one process;
// the in-memory ledger is one process). Every method may return
// ErrUnavailable when the backing store cannot be reached.
type DeliveryLedger interface {
	// Leases are the leases of the instances that own deliveries.
	Leases

	// FirstSeen records key (an idempotency token or a MessageSid) as
	// taken by owner (an instance id, see Leases) and reports whether this
	// is the first time it was recorded. Among concurrent calls with one
	// key exactly one returns true. Keys are remembered for at least 24
	// hours. A key recorded as new is pending until Delivered(key): see
	// TakeOver and Abandoned. It blocks for one write to the store or
	// until ctx is done.
	FirstSeen(ctx context.Context, key, owner string) (bool, error)

	// TakeOver makes owner the owner of the pending delivery recorded
	// under key if its owner holds no live lease (the owner stopped before
	// answering it), and reports what it found (see Claim): ClaimTaken
	// when owner took it, ClaimOwned when it was owner's already,
	// ClaimBusy when another instance alive owns it, ClaimSettled when
	// there is nothing to take (answered, reported, or unknown). The
	// check and the change are atomic: among concurrent calls for one
	// key, in every process sharing the store, at most one gets
	// ClaimTaken, and only while no owner alive holds the key. When
	// owner's own lease has expired, a later caller may take the delivery
	// from owner in turn. It blocks for one transaction on the store or
	// until ctx is done.
	TakeOver(ctx context.Context, key, owner string) (Claim, error)

	// Delivered records that the delivery whose key FirstSeen recorded was
	// answered (handed over, sent, or deliberately answered otherwise), so
	// that Abandoned never returns key and TakeOver never takes it. Marking
	// a key twice, or a key Abandoned already returned, is harmless; an
	// unknown (or forgotten) key is not an error and nothing is recorded for
	// it, so a later FirstSeen of that key is new and pending as usual. It
	// blocks for one write to the store or until ctx is done (then the key
	// may or may not be marked). Safe for concurrent use.
	Delivered(ctx context.Context, key string) error

	// Abandoned claims and returns, in no particular order, the keys that
	// FirstSeen recorded at least olderThan ago (olderThan <= 0: every one
	// recorded before the call), that were neither marked Delivered nor
	// returned by an earlier Abandoned call, and whose owner holds no live
	// lease (an owner alive may still answer them). The claim is atomic:
	// among concurrent calls, in every process sharing the store, each such
	// key is returned by exactly one call, once. Keys are forgotten with the
	// retention of FirstSeen (at least 24 hours); a key older than that may
	// never be returned. Nothing to claim is an empty result, not an
	// error. It blocks for one transaction on the store or until ctx is
	// done. A call that fails (an error wrapping ctx's error when ctx
	// ended, else ErrUnavailable) claimed nothing, unless the store failed
	// while committing the claim: keys may then be claimed and never
	// returned. Safe for concurrent use.
	Abandoned(ctx context.Context, olderThan time.Duration) ([]string, error)
}

// Claim is what DeliveryLedger.TakeOver found, and did, for a recorded
// delivery.
type Claim uint8

// The claims of TakeOver.
const (
	// ClaimSettled: nothing to take: the delivery was answered
	// (Delivered), reported (Abandoned), or is not (or no longer)
	// recorded.
	ClaimSettled Claim = iota
	// ClaimTaken: the delivery was pending and had no owner alive (its
	// owner's lease expired or was released): the caller owns it now,
	// and is to answer it.
	ClaimTaken
	// ClaimOwned: the delivery is pending and the caller owns it already.
	ClaimOwned
	// ClaimBusy: the delivery is pending and another instance that holds
	// a live lease owns it: it may still answer it.
	ClaimBusy
)

var claimNames = [...]string{"settled", "taken", "owned", "busy"}

func (c Claim) String() string {
	if int(c) < len(claimNames) {
		return claimNames[c]
	}
	return "unknown"
}
