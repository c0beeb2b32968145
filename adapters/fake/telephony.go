package fake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
)

var (
	_ ports.TelephonyChannel = (*Telephony)(nil)
	_ porttest.TelephonyPeer = (*TelephonyPeer)(nil)
)

// Telephony is a fake ports.TelephonyChannel: one call's media stream,
// driven from the test through its TelephonyPeer. Create one with
// NewTelephony.
type Telephony struct {
	st   *stream[ports.CallEvent]
	peer *TelephonyPeer
}

// TelephonyPeer is the provider's side of a fake Telephony: it sends the
// caller's events and records what the channel sent and how it closed.
type TelephonyPeer struct {
	ch *Telephony

	mu        sync.Mutex
	seq       int64
	streamSid string
	callSid   string
	received  []porttest.Outbound
	closed    bool
	code      int
	reason    string
	echoMarks bool
	pending   []string // marks sent and not yet echoed
	sendErr   error
	skipped   int // frames the channel skipped (SendMalformed)
	changed   changes
}

// NewTelephony returns a connected channel and its peer.
func NewTelephony() (*Telephony, *TelephonyPeer) {
	ch := &Telephony{st: newStream[ports.CallEvent]()}
	ch.peer = &TelephonyPeer{ch: ch}
	return ch, ch.peer
}

// Recv returns the next event the peer sent. Once the stream ended it
// returns an error wrapping ports.ErrClosed and a *ports.SessionEnded.
func (c *Telephony) Recv(ctx context.Context) (ports.CallEvent, error) {
	return c.st.recv(ctx)
}

func (c *Telephony) send(ctx context.Context, op string, out porttest.Outbound) error {
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
	var echo []string
	switch {
	case out.Kind == "mark" && p.echoMarks:
		echo = []string{out.Mark}
	case out.Kind == "mark":
		p.pending = append(p.pending, out.Mark)
	case out.Kind == "clear":
		echo, p.pending = p.pending, nil
	}
	p.mu.Unlock()
	p.changed.notify()
	for _, name := range echo {
		if err := p.Mark(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// SendAudio records a copy of audio.
func (c *Telephony) SendAudio(ctx context.Context, audio []byte) error {
	return c.send(ctx, "send audio", porttest.Outbound{Kind: "media", Audio: slices.Clone(audio)})
}

// SendMark records the mark. The peer echoes it when the test plays it
// (PlayMark), at the next Clear, or at once with EchoMarks on.
func (c *Telephony) SendMark(ctx context.Context, name string) error {
	return c.send(ctx, "send mark", porttest.Outbound{Kind: "mark", Mark: name})
}

// Clear records the clear; the peer echoes every mark not yet played, as
// Twilio does.
func (c *Telephony) Clear(ctx context.Context) error {
	return c.send(ctx, "clear", porttest.Outbound{Kind: "clear"})
}

// Skipped returns how many malformed frames the peer sent
// (SendMalformed): the fake skips every one.
func (c *Telephony) Skipped() int {
	p := c.peer
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.skipped
}

// Close ends the stream; the peer records reason and the close code (1000,
// or 1008 when policy is set). Only the first call counts.
func (c *Telephony) Close(reason string, policy bool) error {
	code := porttest.CloseNormal
	if policy {
		code = porttest.ClosePolicy
	}
	if !c.st.close(&ports.SessionEnded{Reason: "local_close", Code: code}) {
		return nil
	}
	p := c.peer
	p.mu.Lock()
	p.closed, p.code, p.reason = true, code, reason
	p.mu.Unlock()
	p.changed.notify()
	return nil
}

func (p *TelephonyPeer) emit(ctx context.Context, ev ports.CallEvent) error {
	p.mu.Lock()
	p.seq++
	ev.Seq = p.seq
	if ev.StreamSid == "" {
		ev.StreamSid = p.streamSid
	}
	p.mu.Unlock()
	return p.ch.st.push(ctx, ev)
}

// Emit sends any event (Seq and StreamSid are filled in). It blocks while
// the channel's reader lags far behind, until ctx is done; it fails with
// ports.ErrClosed once the stream ended.
func (p *TelephonyPeer) Emit(ctx context.Context, ev ports.CallEvent) error { return p.emit(ctx, ev) }

// Start sends the connected and start events of a mu-law 8 kHz stream.
func (p *TelephonyPeer) Start(ctx context.Context, callSid, streamSid string, params map[string]string) error {
	p.mu.Lock()
	p.callSid, p.streamSid = callSid, streamSid
	p.mu.Unlock()
	if err := p.emit(ctx, ports.CallEvent{Type: ports.CallConnected}); err != nil {
		return err
	}
	return p.emit(ctx, ports.CallEvent{
		Type: ports.CallStart, CallSid: callSid, AccountSid: "ACfake", Params: maps.Clone(params),
		Encoding: "audio/x-mulaw", SampleRate: 8000, Channels: 1,
	})
}

// Media sends a chunk of caller audio at timestampMs.
func (p *TelephonyPeer) Media(ctx context.Context, timestampMs int64, payload []byte) error {
	return p.emit(ctx, ports.CallEvent{Type: ports.CallMedia, TimestampMs: timestampMs, Payload: slices.Clone(payload)})
}

// DTMF sends a key press.
func (p *TelephonyPeer) DTMF(ctx context.Context, digit string) error {
	return p.emit(ctx, ports.CallEvent{Type: ports.CallDTMF, Digit: digit})
}

// Mark echoes the mark name, as Twilio does when the audio before it has
// played.
func (p *TelephonyPeer) Mark(ctx context.Context, name string) error {
	return p.emit(ctx, ports.CallEvent{Type: ports.CallMark, Mark: name})
}

// SendMalformed stands for a frame the channel cannot decode: nothing
// reaches Recv, and Skipped counts it. It fails with ports.ErrClosed once
// the stream ended.
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

// Stop sends the stop event (the caller hung up) and ends the stream with
// reason "caller_hangup".
func (p *TelephonyPeer) Stop(ctx context.Context) error {
	p.mu.Lock()
	callSid := p.callSid
	p.mu.Unlock()
	if err := p.emit(ctx, ports.CallEvent{Type: ports.CallStop, CallSid: callSid}); err != nil {
		return err
	}
	return p.ch.st.end(ctx, &ports.SessionEnded{Reason: "caller_hangup", Code: porttest.CloseNormal})
}

// Disconnect ends the stream without a stop event, as when the socket
// drops (reason "remote_closed").
func (p *TelephonyPeer) Disconnect(ctx context.Context) error {
	return p.ch.st.end(ctx, &ports.SessionEnded{Reason: "remote_closed"})
}

// EchoMarks makes the peer echo every mark as soon as it is sent (playback
// that takes no time).
func (p *TelephonyPeer) EchoMarks(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.echoMarks = on
}

// PlayMark echoes the oldest mark not yet echoed, as Twilio does when the
// audio before it has played, and returns its name. It fails with
// ports.ErrNotFound when no mark is pending.
func (p *TelephonyPeer) PlayMark(ctx context.Context) (string, error) {
	p.mu.Lock()
	if len(p.pending) == 0 {
		p.mu.Unlock()
		return "", fmt.Errorf("fake: play mark: %w", ports.ErrNotFound)
	}
	name := p.pending[0]
	p.pending = p.pending[1:]
	p.mu.Unlock()
	return name, p.Mark(ctx, name)
}

// PendingMarks returns the marks sent and not yet echoed, oldest first.
func (p *TelephonyPeer) PendingMarks() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pending)
}

// FailSends makes every later send of the channel fail with err (nil
// restores normal sending).
func (p *TelephonyPeer) FailSends(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sendErr = err
}

// Received returns what the channel sent so far, in order.
func (p *TelephonyPeer) Received() []porttest.Outbound {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// WaitReceived blocks until cond holds for what the channel sent, and
// returns that; it returns an error when ctx ends first.
func (p *TelephonyPeer) WaitReceived(ctx context.Context, cond func([]porttest.Outbound) bool) ([]porttest.Outbound, error) {
	var got []porttest.Outbound
	err := p.changed.until(ctx, func() bool {
		got = p.Received()
		return cond(got)
	})
	return got, err
}

// Closed reports whether the channel closed the stream, and with which code.
func (p *TelephonyPeer) Closed() (bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed, p.code
}

// WaitClosed blocks until the channel closed the stream and returns the
// close reason and code; it returns an error when ctx ends first.
func (p *TelephonyPeer) WaitClosed(ctx context.Context) (reason string, code int, err error) {
	err = p.changed.until(ctx, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		reason, code = p.reason, p.code
		return p.closed
	})
	return reason, code, err
}
