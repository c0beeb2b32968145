package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/convgateway/gateway/ports"
)

// prewarm is a speech session opened ahead of its stream. Whoever removes
// it from CallsService.warm owns it: the stream that takes it (and uses or
// abandons it), or the discard at a token failure, the end of the token's
// life, or Shutdown (which abandon it).
type prewarm struct {
	done  chan struct{} // closed when Open has returned; then sess and err are set
	taken chan struct{} // closed when removed from the map by take or Shutdown
	sess  ports.SpeechSession
	err   error

	// tokenKey and expires are those of the call's latest token; guarded
	// by CallsService.mu.
	tokenKey string
	expires  time.Time

	mu        sync.Mutex
	opened    bool // Open has returned
	abandoned bool // nobody will use the session: close it once open
}

// finish records the result of Open and reports whether the session was
// abandoned meanwhile.
func (p *prewarm) finish(sess ports.SpeechSession, err error) (abandoned bool) {
	p.mu.Lock()
	p.sess, p.err, p.opened = sess, err, true
	abandoned = p.abandoned
	p.mu.Unlock()
	close(p.done)
	return abandoned
}

// abandon closes the session now if it is open, else as soon as Open
// returns.
func (p *prewarm) abandon() {
	p.mu.Lock()
	p.abandoned = true
	sess := p.sess
	if !p.opened {
		sess = nil // the pre-warm goroutine closes it
	}
	p.mu.Unlock()
	if sess != nil {
		_ = sess.Close()
	}
}

// prewarmState says what Answer did about pre-warming, for its log line.
type prewarmState uint8

const (
	prewarmOff     prewarmState = iota // PREWARM=false
	prewarmStarted                     // a session started opening
	prewarmReused                      // the call's pre-warm here serves its new token
	prewarmSkipped                     // the call was answered before, with no pre-warm here: none started
)

func (p prewarmState) String() string {
	switch p {
	case prewarmStarted:
		return "started"
	case prewarmReused:
		return "reused"
	case prewarmSkipped:
		return "skipped: answered before"
	}
	return "off"
}

// startPrewarm starts opening a session for the call in the background,
// unless the call has a pre-warm here already (its latest token, token,
// then takes it over) or repeat says the call was answered before and it
// has none here: then another instance pre-warmed it, or the stream will
// open a session itself. It reports false once the service is shutting
// down.
func (s *CallsService) startPrewarm(token, callID string, repeat bool) (prewarmState, bool) {
	key := ports.TokenKey(token)
	expires := time.Now().Add(s.d.TokenTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return prewarmOff, false
	}
	if p := s.warm[callID]; p != nil {
		delete(s.warmToken, p.tokenKey)
		p.tokenKey, p.expires = key, expires
		s.warmToken[key] = callID
		return prewarmReused, true
	}
	if repeat {
		return prewarmSkipped, true
	}
	p := &prewarm{done: make(chan struct{}), taken: make(chan struct{}), tokenKey: key, expires: expires}
	s.warm[callID] = p
	s.warmToken[key] = callID
	s.wg.Add(1)
	go s.prewarm(p, callID)
	return prewarmStarted, true
}

// prewarm opens p's session within OpenTimeout, then keeps it until a
// stream takes it or the call's latest token has expired.
func (s *CallsService) prewarm(p *prewarm, callID string) {
	defer s.wg.Done()
	octx, cancel := context.WithTimeout(s.ctx, s.d.OpenTimeout)
	sess, err := s.speech.Open(octx, s.config(callID))
	cancel()
	if p.finish(sess, err) {
		if sess != nil {
			_ = sess.Close()
		}
		return
	}
	// The session may wait for its stream as long as the call's latest
	// token lives.
	wait := time.NewTimer(s.expiry(p))
	defer wait.Stop()
	for {
		select {
		case <-p.taken: // its taker owns it now
			return
		case <-s.ctx.Done(): // Shutdown took it and abandons it
			return
		case <-wait.C:
		}
		if left := s.expiry(p); left > 0 { // a repeated webhook renewed it
			wait.Reset(left)
			continue
		}
		if s.remove(callID, p) {
			s.log.Info("pre-warmed speech session discarded: no stream arrived in time", "call_id", callID)
			p.abandon()
		}
		return
	}
}

// expiry is how long p's latest token has left to live.
func (s *CallsService) expiry(p *prewarm) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Until(p.expires)
}

// takeLocked is take for a caller that holds s.mu.
func (s *CallsService) takeLocked(callID string) *prewarm {
	p := s.warm[callID]
	if p != nil {
		delete(s.warm, callID)
		delete(s.warmToken, p.tokenKey)
		close(p.taken)
	}
	return p
}

// take removes the pre-warm of the call, if any, and hands it to the
// caller.
func (s *CallsService) take(callID string) *prewarm {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked(callID)
}

// remove deletes p from the pre-warms unless someone took it.
func (s *CallsService) remove(callID string, p *prewarm) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warm[callID] != p {
		return false
	}
	delete(s.warm, callID)
	delete(s.warmToken, p.tokenKey)
	return true
}

// discard closes the pre-warmed session whose call's latest token (as far
// as this process knows: a token replaced here is forgotten) has the key,
// if any: that token was refused at a stream (expired, spent, or
// presented for another call), so no stream will take the session with
// it.
func (s *CallsService) discard(key string) {
	s.mu.Lock()
	var p *prewarm
	if callID, ok := s.warmToken[key]; ok {
		p = s.takeLocked(callID)
	}
	s.mu.Unlock()
	if p != nil {
		p.abandon()
	}
}

// Shutdown stops pre-warming (Answer then fails with ErrUnavailable),
// closes the pre-warmed sessions that no stream took, and waits for the
// pre-warm goroutines. It returns an error wrapping ctx.Err() when that
// took longer than ctx allowed. Calls in progress are not its business: the HTTP server
// drains them before. Safe to call more than once.
func (s *CallsService) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	left := make([]*prewarm, 0, len(s.warm))
	for callID := range s.warm {
		left = append(left, s.takeLocked(callID))
	}
	s.mu.Unlock()
	s.cancel() // ends the opens still in progress
	for _, p := range left {
		p.abandon()
	}
	// The opens were cancelled: only closes remain, so waiting on after
	// the deadline is short.
	if err := drain(ctx, &s.wg, func() {}); err != nil {
		return fmt.Errorf("calls: shutdown: %w", err)
	}
	return nil
}
