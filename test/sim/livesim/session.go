package livesim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/internal/simsess"
)

// Config is what a client's session.start asked for.
type Config struct {
	Model        string
	Instructions string
	Voice        string
	Format       string // "audio/pcmu@8000"
	Delegation   string // "responses", "client", ...; "" when omitted
	BackendModel string // the Responses delegation's model
}

// Session is one client connection. Safe for concurrent use.
type Session struct {
	srv  *Server
	conn *websocket.Conn
	id   string
	seq  atomic.Int64  // event and object ids
	done chan struct{} // closed when the connection has ended
	wg   sync.WaitGroup

	mu           sync.Mutex
	cfg          Config
	startedAt    time.Time
	started      chan struct{} // closed once session.started is sent
	isStarted    bool
	audio        [][]byte
	commands     [][]byte // every client event but audio, as received
	commentaries int
	usageSec     float64
	speaking     *speech   // the utterance being spoken
	lastOutput   time.Time // when the model last stopped speaking
	callerSince  bool      // the caller spoke since then
	refusals     []string  // codes of the error events answering client events

	// The Responses backend (backend.go).
	tools      []ports.ToolSpec   // the delegation's function tools
	calls      map[string]bool    // calls made and not answered, by call_id
	results    []ports.ToolResult // the results received
	unsaid     []string           // results no response has followed yet
	active     string             // the response in progress, if any
	delegation string             // the delegation of the last call
	creates    int                // response.create commands accepted

	turn callerTurn // the Auto policy's state; reader goroutine only
}

func newSession(srv *Server, conn *websocket.Conn) *Session {
	s := &Session{srv: srv, conn: conn, done: make(chan struct{}), started: make(chan struct{}), calls: map[string]bool{}}
	s.id = s.nextID("sess")
	return s
}

func (s *Session) nextID(prefix string) string {
	return prefix + "_" + strconv.FormatInt(s.seq.Add(1), 10)
}

// run answers the client until the connection ends, then waits for the
// session's speakers.
func (s *Session) run(ctx context.Context) {
	defer s.wg.Wait()
	defer close(s.done)
	_ = simsess.ReadLoop(s.conn, func(msg []byte) { s.handle(ctx, msg) })
	s.mu.Lock()
	if s.speaking != nil {
		s.speaking.halt()
	}
	s.mu.Unlock()
}

// appendPrefix is how the gateway's adapter starts every append; the
// simulator reads those without encoding/json.
var appendPrefix = []byte(`{"type":"session.input_audio.append","audio":"`)

func (s *Session) handle(ctx context.Context, b []byte) {
	if audio, ok := bytes.CutPrefix(b, appendPrefix); ok && s.hasStarted() {
		if audio, ok := bytes.CutSuffix(audio, []byte(`"}`)); ok && bytes.IndexByte(audio, '\\') < 0 && bytes.IndexByte(audio, '"') < 0 {
			s.appendAudio(ctx, audio)
			return
		}
	}
	typ, p := checkClientEvent(b)
	var e clientEvent
	_ = json.Unmarshal(b, &e) // checked: an object
	if p != nil {
		s.refuse(ctx, p.code, p.message, p.param, e.EventID)
		return
	}
	if typ != "session.input_audio.append" {
		s.mu.Lock()
		s.commands = append(s.commands, bytes.Clone(b))
		s.mu.Unlock()
	}
	if started := s.hasStarted(); started == (typ == "session.start") {
		code, message := "session_not_started", "Send session.start and wait for session.started first."
		if started {
			code, message = "session_already_started", "The session has already started."
		}
		s.refuse(ctx, code, message, "", e.EventID)
		return
	}
	switch typ {
	case "session.start":
		s.start(ctx, e)
	case "session.input_audio.append":
		s.appendAudio(ctx, []byte(e.Audio))
	case "session.commentary.append", "session.instructions.append", "session.thinking.append":
		s.appendContext(ctx, typ, e)
	case "session.close":
		_ = s.finish(ctx, "close_requested")
	case "session.input_audio.mute", "session.input_audio.unmute":
		_ = s.send(ctx, ackEvent{EventID: s.nextID("event"), Type: typ + "d", ClientEventID: e.EventID})
	case "response.item.create":
		s.itemCreate(ctx, e)
	case "response.create":
		s.responseCreate(ctx, e)
	default: // decision commands and the rest: the simulator does not handle them
		s.refuse(ctx, "unsupported_by_simulator", "The simulator does not handle "+typ+".", "", e.EventID)
	}
}

func (s *Session) hasStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isStarted
}

// start answers session.start. The simulator speaks only the gateway's
// format, 8 kHz mu-law.
func (s *Session) start(ctx context.Context, e clientEvent) {
	f := e.Session.Audio.Format
	if f.Type != "audio/pcmu" || f.Rate != 8000 {
		s.refuse(ctx, "invalid_value", "The simulator speaks audio/pcmu at 8000 Hz only.", "session.audio.format", e.EventID)
		return
	}
	cfg := Config{Model: e.Session.Model, Instructions: e.Session.Instructions, Format: f.Type + "@" + strconv.Itoa(f.Rate)}
	cfg.Voice, _ = e.Session.Audio.Output.Voice.(string)
	var tools []ports.ToolSpec
	if d := e.Session.Delegation; d != nil {
		cfg.Delegation, cfg.BackendModel = d.Type, d.Responses.Model
		for _, t := range d.Responses.Tools {
			if t.Type == "function" {
				tools = append(tools, ports.ToolSpec{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
			}
		}
	}
	s.mu.Lock()
	s.cfg, s.tools, s.startedAt, s.isStarted = cfg, tools, time.Now(), true
	s.mu.Unlock()
	// session.started goes out before waiters learn of it: whatever a test
	// does next comes after it on the wire.
	_ = s.send(ctx, sessionEvent{EventID: s.nextID("event"), Type: "session.started", Session: s.resource()})
	close(s.started)
}

func (s *Session) resource() sessionResource {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := sessionResource{ID: s.id, ExpiresAt: s.startedAt.Add(time.Hour).Unix(), Model: s.cfg.Model,
		Status: "active", Instructions: s.cfg.Instructions}
	r.Audio.Format.Type, r.Audio.Format.Rate = "audio/pcmu", 8000
	r.Audio.Output.Voice = s.cfg.Voice
	return r
}

// timeline returns the session's clock: milliseconds since it started.
func (s *Session) timeline() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Since(s.startedAt).Milliseconds()
}

func (s *Session) appendAudio(ctx context.Context, audio []byte) {
	s.mu.Lock()
	s.audio = append(s.audio, bytes.Clone(audio))
	s.mu.Unlock()
	if s.srv.opts.Auto != nil {
		s.listen(ctx, audio)
	}
}

// appendContext acknowledges appended context; commentary in Auto mode
// makes the model speak.
func (s *Session) appendContext(ctx context.Context, typ string, e clientEvent) {
	now := s.timeline()
	_ = s.send(ctx, timedEvent{EventID: s.nextID("event"), Type: typ[:len(typ)-len("append")] + "appended",
		StartMs: now, EndMs: now, ClientEventID: e.EventID})
	if typ != "session.commentary.append" {
		return
	}
	s.mu.Lock()
	s.commentaries++
	s.mu.Unlock()
	if a := s.srv.opts.Auto; a != nil {
		s.autoReply(ctx, a.Transcript, s.srv.reply)
	}
}

func (s *Session) sendError(ctx context.Context, typ, code, message, param, clientEventID string) {
	_ = s.send(ctx, errorEvent{EventID: s.nextID("event"), Type: "error", Error: errorInfo{
		Type: typ, Code: code, Message: message, Param: param, ClientEventID: clientEventID}})
}

func (s *Session) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("livesim: encode: %w", err)
	}
	return s.Raw(ctx, b)
}

// Raw sends event as it is, as a text message: for tests of malformed or
// unusual server events.
func (s *Session) Raw(ctx context.Context, event []byte) error {
	if f := s.srv.opts.OnEvent; f != nil {
		f(event)
	}
	if err := s.conn.Write(ctx, websocket.MessageText, event); err != nil {
		return fmt.Errorf("livesim: write: %w", err)
	}
	return nil
}

// Done is closed when the session's connection has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// WaitStarted waits until the client has started the session (and
// session.started is sent) and returns the configuration in the port's
// words.
func (s *Session) WaitStarted(ctx context.Context) (ports.SpeechConfig, error) {
	select {
	case <-s.started:
		s.mu.Lock()
		defer s.mu.Unlock()
		return ports.SpeechConfig{Instructions: s.cfg.Instructions, Tools: append([]ports.ToolSpec(nil), s.tools...)}, nil
	case <-ctx.Done():
		return ports.SpeechConfig{}, fmt.Errorf("livesim: wait for session.start: %w", ctx.Err())
	}
}

// Config returns what session.start asked for (zero before it).
func (s *Session) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// ReceivedAudio returns the caller audio chunks, in order, as the base64
// text the client sent.
func (s *Session) ReceivedAudio() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.audio...)
}

// Commands returns every client event but audio, in order, as received.
func (s *Session) Commands() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.commands...)
}

// Commentaries counts session.commentary.append events.
func (s *Session) Commentaries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commentaries
}
