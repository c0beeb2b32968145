package fake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/convgateway/gateway/ports"
)

var _ ports.MessageSender = (*MessageSender)(nil)

// DefaultLimits are the limits of a new MessageSender: Twilio's (a body of
// 1600 characters, ten messages or 12,000 bytes in an inline reply).
var DefaultLimits = ports.MessageLimits{MaxChars: 1600, MaxReplyMessages: 10, MaxReplyBytes: 12_000}

// MessageSender is a fake ports.MessageSender that records what it accepts.
// Create one with NewMessageSender.
type MessageSender struct {
	mu       sync.Mutex
	sent     []ports.OutboundMessage
	errs     queue[error]
	limited  int // next Sends rate limited once (then retried)
	lost     int // next Sends accepted with their answer lost
	attempts int
	delay    time.Duration
	limits   ports.MessageLimits
	changed  changes
}

// NewMessageSender returns a sender with DefaultLimits that accepts every
// well-formed message at once.
func NewMessageSender() *MessageSender { return &MessageSender{limits: DefaultLimits} }

// Limits returns the sender's limits: DefaultLimits, or those set with
// SetLimits.
func (s *MessageSender) Limits() ports.MessageLimits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits
}

// SetLimits makes Limits return l, and Send refuse a body longer than
// l.MaxChars. Set them before the sender is handed to its user, which may
// read them once.
func (s *MessageSender) SetLimits(l ports.MessageLimits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = l
}

// Send records msg and returns a message id ("SM" + 32 hex digits). It
// fails with ports.ErrRejected when msg has no recipient, not exactly one
// of Body and ContentSID, or a Body longer than the Limits' MaxChars, and
// with the next error queued by FailNext. A
// Send rate limited by RateLimitNext counts two attempts and succeeds (as
// the real sender retries); one lost by LoseNext records msg and fails
// with ports.ErrUnavailable and ports.ErrOutcomeUnknown. It waits for the
// delay set with SetDelay, until ctx is done.
func (s *MessageSender) Send(ctx context.Context, msg ports.OutboundMessage) (string, error) {
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if err := sleep(ctx, delay); err != nil {
		return "", fmt.Errorf("fake: send message: %w", err)
	}
	if err := errCheck(ctx, "send message"); err != nil {
		return "", err
	}
	if msg.To == "" || (msg.Body == "") == (msg.ContentSID == "") {
		return "", fmt.Errorf("fake: send message: need a recipient and one of body and template: %w", ports.ErrRejected)
	}
	s.mu.Lock()
	s.attempts++
	if utf8.RuneCountInString(msg.Body) > s.limits.MaxChars {
		s.mu.Unlock()
		return "", fmt.Errorf("fake: send message: body longer than %d characters: %w", s.limits.MaxChars, ports.ErrRejected)
	}
	if err, ok := s.errs.pop(); ok {
		s.mu.Unlock()
		return "", fmt.Errorf("fake: send message: %w", err)
	}
	if s.limited > 0 {
		s.limited--
		s.attempts++
	}
	msg.ContentVariables = maps.Clone(msg.ContentVariables)
	s.sent = append(s.sent, msg)
	id := fmt.Sprintf("SM%032x", len(s.sent))
	lost := s.lost > 0
	if lost {
		s.lost--
	}
	s.mu.Unlock()
	s.changed.notify()
	if lost {
		return "", fmt.Errorf("fake: send message: answer lost: %w: %w", ports.ErrUnavailable, ports.ErrOutcomeUnknown)
	}
	return id, nil
}

// RateLimitNext makes the next Send meet a rate limit once, which it
// retries: it counts one attempt more and succeeds.
func (s *MessageSender) RateLimitNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited++
}

// LoseNext makes the next Send record its message (the provider took it)
// and fail as if the answer had been lost.
func (s *MessageSender) LoseNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost++
}

// Attempts counts the requests made to the provider, retries included.
func (s *MessageSender) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// RejectNext makes the next Send fail with ports.ErrRejected.
func (s *MessageSender) RejectNext() { s.FailNext(ports.ErrRejected) }

// FailNext makes the next Send fail with err (for example
// ports.ErrUnavailable).
func (s *MessageSender) FailNext(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs.push(err)
}

// SetDelay makes every later Send take at least d.
func (s *MessageSender) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Sent returns the messages accepted so far, in order.
func (s *MessageSender) Sent() []ports.OutboundMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// WaitSent blocks until at least n messages were accepted and returns them;
// it returns an error when ctx ends first.
func (s *MessageSender) WaitSent(ctx context.Context, n int) ([]ports.OutboundMessage, error) {
	var got []ports.OutboundMessage
	err := s.changed.until(ctx, func() bool {
		got = s.Sent()
		return len(got) >= n
	})
	return got, err
}
