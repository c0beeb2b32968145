package mediasim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// Options configure a Caller.
type Options struct {
	// URL is the gateway's media stream URL, e.g. ws://127.0.0.1:8080/media-stream.
	URL string
	// Signature, when set, is sent as the x-twilio-signature header of the
	// upgrade, as Twilio does.
	Signature string
	// HTTPClient dials the WebSocket; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Clock paces playback and Speak; nil means RealTime.
	Clock Clock
	// NoRecord keeps no copy of the frames received, the audio played or
	// the marks echoed (Received, Frames, Played and Marks return
	// nothing), for long or many calls.
	NoRecord bool
	// OnMedia, when set, sees the payload (base64 audio) of every media
	// frame as it arrives, on the caller's reader goroutine.
	OnMedia func(payload []byte)
}

// Frame is one frame the gateway sent, as Twilio sees it.
type Frame struct {
	// Event is the frame's event: "media", "mark", "clear", or whatever
	// else the gateway sent; "" for a frame that is not JSON.
	Event string
	Audio []byte // the base64 payload of a media frame
	Mark  string // the name of a mark
}

// MarkEcho is a mark the caller echoed back to the gateway.
type MarkEcho struct {
	Name string
	At   time.Time // on the caller's clock
	// Flushed is true when a clear flushed the mark rather than its audio
	// having played.
	Flushed bool
}

// Caller is one simulated Twilio Media Stream. Its methods are safe for
// concurrent use. Close releases it.
type Caller struct {
	conn  *websocket.Conn
	clock Clock
	opts  Options

	seq       atomic.Int64
	streamSid atomic.Pointer[string]
	nextTs    atomic.Int64 // stream position for Speak, in ms
	hungUp    atomic.Bool  // Stop has started the close

	echoMu     sync.Mutex // held while marks leave the queue and are echoed
	mu         sync.Mutex
	frames     []Frame
	queue      []queued // audio and marks waiting to play
	played     []byte   // mu-law audio that finished playing (or was cut by a clear)
	marks      []MarkEcho
	clears     []time.Time
	startedAt  time.Time
	firstAudio time.Duration
	closed     bool
	closeCode  int

	wake   chan struct{} // pokes the player (buffered 1)
	done   chan struct{} // closed when the connection is gone
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// queued is one item of the playback queue: audio or a mark.
type queued struct {
	audio   []byte // decoded mu-law
	mark    string
	isMark  bool
	started time.Time // when the audio began to play; zero before
}

var _ peer.Telephony = (*Caller)(nil)

// Dial connects to the gateway. ctx bounds the handshake only.
func Dial(ctx context.Context, opts Options) (*Caller, error) {
	header := http.Header{}
	if opts.Signature != "" {
		header.Set("X-Twilio-Signature", opts.Signature)
	}
	conn, _, err := websocket.Dial(ctx, opts.URL, &websocket.DialOptions{HTTPClient: opts.HTTPClient, HTTPHeader: header})
	if err != nil {
		return nil, fmt.Errorf("mediasim: dial: %w", err)
	}
	conn.SetReadLimit(1 << 20)
	clock := opts.Clock
	if clock == nil {
		clock = RealTime
	}
	lifetime, cancel := context.WithCancel(context.Background())
	c := &Caller{
		conn:   conn,
		clock:  clock,
		opts:   opts,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		cancel: cancel,
	}
	c.wg.Add(2)
	go c.read(lifetime)
	go c.play(lifetime)
	return c, nil
}

// Done is closed when the connection has ended, by either side.
func (c *Caller) Done() <-chan struct{} { return c.done }

// Close closes the connection without a handshake (as a dropped call would)
// if it is still open, and waits for the caller's goroutines.
func (c *Caller) Close() error {
	err := c.conn.CloseNow()
	c.cancel()
	c.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("mediasim: close: %w", err)
	}
	return nil
}

// Start sends connected and then start, as Twilio does when the stream
// begins. The start frame's callSid is call.CallID and its streamSid is
// "MZ" followed by the CallID without its "CA" prefix; its
// customParameters are call.Params, with call.From and call.To, when set,
// as the parameters "from" and "to" (where the gateway's channel reads
// them).
func (c *Caller) Start(ctx context.Context, call ports.CallInfo) error {
	if err := c.writeJSON(ctx, connectedFrame{Event: "connected", Protocol: "Call", Version: "1.0.0"}); err != nil {
		return err
	}
	streamSid := "MZ" + strings.TrimPrefix(call.CallID, "CA")
	c.streamSid.Store(&streamSid)
	params := make(map[string]string, len(call.Params)+2)
	maps.Copy(params, call.Params)
	if call.From != "" {
		params["from"] = call.From
	}
	if call.To != "" {
		params["to"] = call.To
	}
	f := startFrame{Event: "start", SequenceNumber: c.nextSeq(), StreamSid: streamSid}
	f.Start.AccountSid = "AC00000000000000000000000000000000"
	f.Start.StreamSid = streamSid
	f.Start.CallSid = call.CallID
	f.Start.Tracks = []string{"inbound"}
	f.Start.CustomParameters = params
	f.Start.MediaFormat.Encoding = "audio/x-mulaw"
	f.Start.MediaFormat.SampleRate = 8000
	f.Start.MediaFormat.Channels = 1
	c.mu.Lock()
	c.startedAt = c.clock.Now()
	c.mu.Unlock()
	return c.writeJSON(ctx, f)
}

// StreamSid returns the streamSid of the call Start began, or "" before
// Start.
func (c *Caller) StreamSid() string { return c.sid() }

// Audio sends one media frame of caller audio (base64 mu-law) at the given
// stream position (its timestamp), numeric fields as strings like Twilio.
func (c *Caller) Audio(ctx context.Context, mediaMs int64, audio []byte) error {
	seq := c.seq.Add(1)
	b := make([]byte, 0, 160+len(audio))
	b = append(b, `{"event":"media","sequenceNumber":"`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `","media":{"track":"inbound","chunk":"`...)
	b = strconv.AppendInt(b, seq-1, 10)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, mediaMs, 10)
	b = append(b, `","payload":`...)
	b = appendJSONString(b, string(audio))
	b = append(b, `},"streamSid":`...)
	b = appendJSONString(b, c.sid())
	b = append(b, '}')
	return c.write(ctx, b)
}

// appendJSONString appends s as a JSON string: as it is between quotes
// when it needs no escaping (base64 audio, sids, mark names), else through
// encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Speak streams raw mu-law audio as 20 ms media frames continuing the
// stream position, paced at real time on the caller's clock when paced is
// set, else as fast as the connection takes them.
func (c *Caller) Speak(ctx context.Context, mulaw []byte, paced bool) error {
	const frame = 160 // 20 ms
	next := c.clock.Now()
	for len(mulaw) > 0 {
		n := min(frame, len(mulaw))
		ts := c.nextTs.Add(int64(n / 8))
		if err := c.Audio(ctx, ts, []byte(base64.StdEncoding.EncodeToString(mulaw[:n]))); err != nil {
			return err
		}
		mulaw = mulaw[n:]
		if paced {
			next = next.Add(time.Duration(n/8) * time.Millisecond)
			select {
			case <-c.clock.After(next.Sub(c.clock.Now())):
			case <-ctx.Done():
				return fmt.Errorf("mediasim: speak: %w", ctx.Err())
			}
		}
	}
	return nil
}

// Key sends a key press: a dtmf frame whose digit is key.
func (c *Caller) Key(ctx context.Context, key string) error {
	f := dtmfFrame{Event: "dtmf", StreamSid: c.sid(), SequenceNumber: c.nextSeq()}
	f.DTMF.Track = "inbound_track"
	f.DTMF.Digit = key
	return c.writeJSON(ctx, f)
}

// HangUp sends the stop event (the caller hung up) and closes the socket
// normally, as Twilio does.
func (c *Caller) HangUp(ctx context.Context) error {
	f := stopFrame{Event: "stop", SequenceNumber: c.nextSeq(), StreamSid: c.sid()}
	f.Stop.AccountSid = "AC00000000000000000000000000000000"
	if err := c.writeJSON(ctx, f); err != nil {
		return err
	}
	c.hungUp.Store(true)
	// The gateway may close first, as soon as it has read the stop.
	if err := c.conn.Close(websocket.StatusNormalClosure, ""); err != nil && websocket.CloseStatus(err) < 0 && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("mediasim: close after stop: %w", err)
	}
	return nil
}

// Raw sends frame as it is, as a text message: for tests of malformed or
// unusual frames.
func (c *Caller) Raw(ctx context.Context, frame []byte) error { return c.write(ctx, frame) }

// SendMalformed sends a text frame that is not JSON, which the gateway must
// skip.
func (c *Caller) SendMalformed(ctx context.Context) error { return c.write(ctx, []byte("not json")) }

// Received returns the audio and the clears the gateway sent, in order:
// its frames (Frames) in the gateway's own words, marks and frames the
// simulator cannot read left out.
func (c *Caller) Received() []peer.Outbound {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]peer.Outbound, 0, len(c.frames))
	for _, f := range c.frames {
		switch f.Event {
		case "media":
			out = append(out, peer.Outbound{Kind: peer.OutAudio, Audio: f.Audio})
		case "clear":
			out = append(out, peer.Outbound{Kind: peer.OutClear})
		}
	}
	return out
}

// Frames returns the frames the gateway sent, in order, as Twilio sees
// them.
func (c *Caller) Frames() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Frame(nil), c.frames...)
}

// Closed reports whether the gateway closed the stream, and its close code.
func (c *Caller) Closed() (closed bool, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.closeCode
}

// Ended reports whether the gateway closed the stream and why, as far as
// the close code tells: 1008 (policy violation) is a refusal, 1000 a
// normal end, any other code a failure.
func (c *Caller) Ended() (ended bool, reason ports.EndReason) {
	closed, code := c.Closed()
	switch {
	case !closed:
		return false, ports.EndCompleted
	case code == int(websocket.StatusPolicyViolation):
		return true, ports.EndRefused
	case code == int(websocket.StatusNormalClosure):
		return true, ports.EndCompleted
	}
	return true, ports.EndFailed
}

// Played returns the mu-law audio played so far: whole media chunks that
// finished playing and the played part of a chunk cut by a clear.
func (c *Caller) Played() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.played...)
}

// Marks returns the marks echoed so far, in order.
func (c *Caller) Marks() []MarkEcho {
	c.echoMu.Lock()
	defer c.echoMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]MarkEcho(nil), c.marks...)
}

// Clears returns when each clear arrived.
func (c *Caller) Clears() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.clears...)
}

// FirstAudio returns the time from sending start to receiving the first
// media frame, and whether any has arrived.
func (c *Caller) FirstAudio() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.firstAudio, c.firstAudio > 0
}

func (c *Caller) sid() string {
	if p := c.streamSid.Load(); p != nil {
		return *p
	}
	return ""
}

func (c *Caller) nextSeq() string { return strconv.FormatInt(c.seq.Add(1), 10) }

func (c *Caller) writeJSON(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("mediasim: encode: %w", err)
	}
	return c.write(ctx, b)
}

func (c *Caller) write(ctx context.Context, b []byte) error {
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("mediasim: write: %w", err)
	}
	return nil
}
