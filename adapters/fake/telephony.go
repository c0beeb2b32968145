package fake

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

var (
	_ ports.TelephonyChannel = (*Telephony)(nil)
	_ peer.Telephony         = (*TelephonyPeer)(nil)
)

// Telephony is a fake ports.TelephonyChannel: one call's media, driven from
// the test through its TelephonyPeer. Its audio is mu-law at 8 kHz unless
// set otherwise (NewTelephonyFormat). Create one with NewTelephony.
type Telephony struct {
	st     *stream[ports.CallEvent]
	peer   *TelephonyPeer
	format ports.AudioFormat
}

// TelephonyPeer is the provider's side of a fake Telephony: it sends the
// caller's events, records what the channel sent and how it ended, and
// reports playback when the test plays the audio (PlayNext, PlayOut), at
// a Clear, or at once with AutoPlay on.
type TelephonyPeer struct {
	ch *Telephony

	mu       sync.Mutex
	received []peer.Outbound
	ended    bool
	reason   ports.EndReason
	autoPlay bool
	queued   int64   // ms given to Play so far
	pending  []int64 // the position at the end of each Play not yet played
	sendErr  error
	skipped  int // frames the channel skipped (SendMalformed)
	changed  changes
}

// NewTelephony returns a connected mu-law 8 kHz channel and its peer.
func NewTelephony() (*Telephony, *TelephonyPeer) { return NewTelephonyFormat(ports.Mulaw8k) }

// NewTelephonyFormat returns a connected channel of format f and its peer.
func NewTelephonyFormat(f ports.AudioFormat) (*Telephony, *TelephonyPeer) {
	ch := &Telephony{st: newStream[ports.CallEvent](), format: f}
	ch.peer = &TelephonyPeer{ch: ch}
	return ch, ch.peer
}

// Format returns the channel's audio format.
func (c *Telephony) Format() ports.AudioFormat { return c.format }

// Recv returns the next event the peer sent. Once the call ended it
// returns an error wrapping ports.ErrClosed and a *ports.SessionEnded.
func (c *Telephony) Recv(ctx context.Context) (ports.CallEvent, error) {
	return c.st.recv(ctx)
}

func (c *Telephony) send(ctx context.Context, op string, out peer.Outbound) error {
	if err := errCheck(ctx, op); err != nil {
		return err
	}
	if err := c.st.alive(op); err != nil {
		return err
	}
	p := c.peer
	p.mu.Lock()
	if err := p.sendErr; err != nil {
		p.mu.Unlock()
		return fmt.Errorf("fake: %s: %w", op, err)
	}
	p.received = append(p.received, out)
	var report []int64
	switch out.Kind {
	case peer.OutAudio:
		p.queued += int64(c.format.Millis(base64.StdEncoding.DecodedLen(len(out.Audio)) - padding(out.Audio)))
		if p.autoPlay {
			report = []int64{p.queued}
		} else {
			p.pending = append(p.pending, p.queued)
		}
	case peer.OutClear: // cleared audio counts as done, as Twilio echoes flushed marks
		report, p.pending = p.pending, nil
	}
	p.mu.Unlock()
	p.changed.notify()
	for _, pos := range report {
		if err := p.played(ctx, pos); err != nil {
			return err
		}
	}
	return nil
}

// padding counts the '=' at the end of base64 text.
func padding(b []byte) int {
	n := 0
	for i := len(b) - 1; i >= 0 && b[i] == '=' && n < 2; i-- {
		n++
	}
	return n
}

// Play records a copy of audio and queues it for playback.
func (c *Telephony) Play(ctx context.Context, audio []byte) error {
	return c.send(ctx, "play", peer.Outbound{Kind: peer.OutAudio, Audio: slices.Clone(audio)})
}

// Clear records the clear; the peer reports every queued audio as done.
func (c *Telephony) Clear(ctx context.Context) error {
	return c.send(ctx, "clear", peer.Outbound{Kind: peer.OutClear})
}

// Skipped returns how many malformed frames the peer sent
// (SendMalformed): the fake skips every one.
func (c *Telephony) Skipped() int {
	p := c.peer
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.skipped
}

// End ends the call; the peer records the reason. Only the first call
// counts.
func (c *Telephony) End(reason ports.EndReason) error {
	if !c.st.close(&ports.SessionEnded{Reason: "local_close"}) {
		return nil
	}
	p := c.peer
	p.mu.Lock()
	p.ended, p.reason = true, reason
	p.mu.Unlock()
	p.changed.notify()
	return nil
}

// Emit sends any event. It blocks while the channel's reader lags far
// behind, until ctx is done; it fails with ports.ErrClosed once the call
// ended.
func (p *TelephonyPeer) Emit(ctx context.Context, ev ports.CallEvent) error {
	return p.ch.st.push(ctx, ev)
}

// Start sends the start of the call.
func (p *TelephonyPeer) Start(ctx context.Context, call ports.CallInfo) error {
	call.Params = maps.Clone(call.Params)
	return p.Emit(ctx, ports.CallEvent{Type: ports.CallStarted, Call: call})
}

// Audio sends a chunk of caller audio at mediaMs.
func (p *TelephonyPeer) Audio(ctx context.Context, mediaMs int64, audio []byte) error {
	return p.Emit(ctx, ports.CallEvent{Type: ports.CallAudio, MediaMs: mediaMs, Audio: slices.Clone(audio)})
}

// Key sends a key press.
func (p *TelephonyPeer) Key(ctx context.Context, key string) error {
	return p.Emit(ctx, ports.CallEvent{Type: ports.CallKey, Key: key})
}

func (p *TelephonyPeer) played(ctx context.Context, pos int64) error {
	return p.Emit(ctx, ports.CallEvent{Type: ports.CallPlayed, PlayedMs: pos})
}

// SendMalformed stands for a frame the channel cannot decode: nothing
// reaches Recv, and Skipped counts it. It fails with ports.ErrClosed once
// the call ended.
func (p *TelephonyPeer) SendMalformed(ctx context.Context) error {
	if err := errCheck(ctx, "send malformed"); err != nil {
		return err
	}
	if err := p.ch.st.alive("send malformed"); err != nil {
		return err
	}
	p.mu.Lock()
	p.skipped++
	p.mu.Unlock()
	return nil
}

// HangUp sends the hang-up event and ends the call with reason
// "caller_hangup".
func (p *TelephonyPeer) HangUp(ctx context.Context) error {
	if err := p.Emit(ctx, ports.CallEvent{Type: ports.CallHungUp}); err != nil {
		return err
	}
	return p.ch.st.end(ctx, &ports.SessionEnded{Reason: "caller_hangup"})
}

// Disconnect ends the call without a hang-up event, as when the socket
// drops (reason "remote_closed").
func (p *TelephonyPeer) Disconnect(ctx context.Context) error {
	return p.ch.st.end(ctx, &ports.SessionEnded{Reason: "remote_closed"})
}

// AutoPlay makes the peer report every Play as played at once (playback
// that takes no time).
func (p *TelephonyPeer) AutoPlay(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.autoPlay = on
}

// PlayNext reports the oldest Play not yet played as played and returns
// the position reported. It fails with ports.ErrNotFound when nothing is
// queued.
func (p *TelephonyPeer) PlayNext(ctx context.Context) (int64, error) {
	p.mu.Lock()
	if len(p.pending) == 0 {
		p.mu.Unlock()
		return 0, fmt.Errorf("fake: play next: %w", ports.ErrNotFound)
	}
	pos := p.pending[0]
	p.pending = p.pending[1:]
	p.mu.Unlock()
	return pos, p.played(ctx, pos)
}

// PlayOut reports everything queued as played.
func (p *TelephonyPeer) PlayOut(ctx context.Context) error {
	p.mu.Lock()
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, pos := range pending {
		if err := p.played(ctx, pos); err != nil {
			return err
		}
	}
	return nil
}

// Queued returns how many Plays wait to be played.
func (p *TelephonyPeer) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// FailSends makes every later send of the channel fail with err (nil
// restores normal sending).
func (p *TelephonyPeer) FailSends(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sendErr = err
}

// Received returns what the channel sent so far, in order.
func (p *TelephonyPeer) Received() []peer.Outbound {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// WaitReceived blocks until cond holds for what the channel sent, and
// returns that; it returns an error when ctx ends first.
func (p *TelephonyPeer) WaitReceived(ctx context.Context, cond func([]peer.Outbound) bool) ([]peer.Outbound, error) {
	var got []peer.Outbound
	err := p.changed.until(ctx, func() bool {
		got = p.Received()
		return cond(got)
	})
	return got, err
}

// Ended reports whether the channel ended the call, and why.
func (p *TelephonyPeer) Ended() (bool, ports.EndReason) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended, p.reason
}

// WaitEnded blocks until the channel ended the call and returns the
// reason; it returns an error when ctx ends first.
func (p *TelephonyPeer) WaitEnded(ctx context.Context) (ports.EndReason, error) {
	var reason ports.EndReason
	err := p.changed.until(ctx, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		reason = p.reason
		return p.ended
	})
	return reason, err
}
