package realtimesim

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

// Options configure a Server.
type Options struct {
	// APIKey, when set, is the only bearer token accepted; any other gets
	// 401 before the upgrade. A missing Authorization header always does.
	APIKey string
	// Logger receives the simulator's own problems; nil discards.
	Logger *slog.Logger
	// Auto enables the automatic conversation policy; nil means scripted
	// only.
	Auto *Auto
	// DropAudio counts caller audio frames without keeping them, for long
	// or many calls; ReceivedAudio then returns nothing.
	DropAudio bool
	// OnAudio, when set, sees every caller frame (the base64 text, valid
	// only during the call) in order, on the session's reader goroutine.
	OnAudio func(s *Session, audio []byte)
	// OnEvent, when set, sees every server event sent (valid only during
	// the call). Calls may come from several goroutines.
	OnEvent func(event []byte)
	// OnDelta, when set, is called right before each audio delta of a
	// response is sent, with the response's number in the session (from 1;
	// the responses that call tools are counted too) and the chunk's index
	// in it (from 0); it returns the chunk to send (base64 audio): chunk
	// itself, or a replacement (for example one that carries a marker, for
	// measurements). It runs on the response's goroutine; a test may block
	// in it to keep a response in progress.
	OnDelta func(s *Session, response, index int, chunk []byte) []byte
	// HandshakeDelay delays every WebSocket handshake, as the real API's
	// TLS, upgrade and session set-up over the internet take time (a few
	// hundred milliseconds): it makes pre-warming measurable.
	HandshakeDelay time.Duration
}

// Auto is the automatic conversation policy.
type Auto struct {
	// Reply is the assistant's answer, raw mu-law; nil means one second of
	// a 440 Hz tone.
	Reply []byte
	// Transcript is the reply's transcript.
	Transcript string
	// CallerTranscript is reported as the transcript of each caller turn
	// when the session asked for transcription.
	CallerTranscript string
	// Silence is how long a pause ends a caller turn; 0 means 400 ms.
	Silence time.Duration
	// ChunkEvery paces the reply's 20 ms chunks; 0 means 10 ms (twice real
	// time, as the real API streams faster than real time).
	ChunkEvery time.Duration
	// SayToolOutputs makes the first reply after tool results say their
	// outputs: its transcript is the outputs received since a response
	// last began, joined by spaces (instead of Transcript).
	SayToolOutputs bool
}

// Server is a Realtime simulator. Its peer methods (peer.Speech) act on
// the session opened most recently. Safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	srv    *httptest.Server
	reply  [][]byte // Auto.Reply as base64 chunks of 20 ms
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions []*Session
	changed  chan struct{} // closed and replaced when a session is added
}

var _ peer.Speech = (*Server)(nil)

// New starts a simulator on a loopback port.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts, log: log, ctx: ctx, cancel: cancel, changed: make(chan struct{})}
	if a := opts.Auto; a != nil {
		audio := a.Reply
		if audio == nil {
			audio = mulaw.Tone(440, 1000)
		}
		for len(audio) > 0 {
			n := min(160, len(audio))
			s.reply = append(s.reply, []byte(base64.StdEncoding.EncodeToString(audio[:n])))
			audio = audio[n:]
		}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL returns the WebSocket URL of the Realtime endpoint, with a model.
func (s *Server) URL() string {
	return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/v1/realtime?model=gpt-realtime"
}

// Close closes every session at once (no close handshake) and stops the
// server, waiting for its goroutines.
func (s *Server) Close() {
	s.cancel()
	s.mu.Lock()
	sessions := s.sessions
	s.mu.Unlock()
	for _, sess := range sessions {
		_ = sess.conn.CloseNow()
	}
	s.wg.Wait()
	s.srv.Close()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("OpenAI-Beta") != "" {
		s.refuseBeta(w, r)
		return
	}
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || auth == "" || (s.opts.APIKey != "" && auth != s.opts.APIKey) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"invalid_api_key","message":"Incorrect API key provided."}}`))
		return
	}
	if d := s.opts.HandshakeDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Warn("realtimesim: accept", "err", err)
		return
	}
	conn.SetReadLimit(16 << 20) // input_audio_buffer.append may carry 15 MiB
	sess := newSession(s, conn, r.URL.Query().Get("model"))
	s.wg.Add(1)
	s.mu.Lock()
	s.sessions = append(s.sessions, sess)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	defer s.wg.Done()
	if s.ctx.Err() != nil { // Close has run and will not see this session
		_ = conn.CloseNow()
	}
	sess.run(s.ctx)
}

// refuseBeta answers like the GA API to a client that still sends the
// beta header.
func (s *Server) refuseBeta(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	sess := newSession(s, conn, "")
	sess.sendError(context.Background(), "invalid_request_error", "beta_api_shape_disabled",
		"The beta Realtime API shape is disabled; remove the OpenAI-Beta header.", "")
	_ = conn.Close(4000, "beta_api_shape_disabled")
}

// Sessions returns every session opened so far, oldest first.
func (s *Server) Sessions() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Session(nil), s.sessions...)
}

// Latest waits until a session exists and returns the newest.
func (s *Server) Latest(ctx context.Context) (*Session, error) {
	for {
		s.mu.Lock()
		changed := s.changed
		var last *Session
		if n := len(s.sessions); n > 0 {
			last = s.sessions[n-1]
		}
		s.mu.Unlock()
		if last != nil {
			return last, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("realtimesim: wait for a session: %w", ctx.Err())
		}
	}
}

// latest returns the newest session, or nil.
func (s *Server) latest() *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.sessions); n > 0 {
		return s.sessions[n-1]
	}
	return nil
}

var errNoSession = errors.New("realtimesim: no session")

// WaitSession waits for the newest session to be configured and returns
// its configuration in the port's words: the instructions, the function
// tools and the MCP servers (the rest of the session's configuration is
// the adapter's; Session.WaitConfig has it).
func (s *Server) WaitSession(ctx context.Context) (ports.SpeechConfig, error) {
	sess, err := s.Latest(ctx)
	if err != nil {
		return ports.SpeechConfig{}, err
	}
	conf, err := sess.WaitConfig(ctx)
	if err != nil {
		return ports.SpeechConfig{}, err
	}
	return ports.SpeechConfig{Instructions: conf.Instructions, Tools: conf.Tools, MCP: conf.MCP}, nil
}

// CallTool makes the model of the newest session call a function (see
// Session.CallTool).
func (s *Server) CallTool(ctx context.Context, call ports.ToolCall) error {
	if sess := s.latest(); sess != nil {
		return sess.CallTool(ctx, call)
	}
	return errNoSession
}

// ToolResults returns the tool results the newest session received.
func (s *Server) ToolResults() []ports.ToolResult {
	if sess := s.latest(); sess != nil {
		return sess.ToolResults()
	}
	return nil
}

// Refused counts the newest session's response.create events refused
// because a response was active.
func (s *Server) Refused() int {
	if sess := s.latest(); sess != nil {
		return sess.Refused()
	}
	return 0
}

// ReceivedAudio returns the newest session's caller audio frames.
func (s *Server) ReceivedAudio() [][]byte {
	if sess := s.latest(); sess != nil {
		return sess.ReceivedAudio()
	}
	return nil
}

// Responds counts the newest session's response.create events.
func (s *Server) Responds() int {
	if sess := s.latest(); sess != nil {
		return sess.Responds()
	}
	return 0
}

// Heard returns the newest session's truncations.
func (s *Server) Heard() []peer.Heard {
	if sess := s.latest(); sess != nil {
		return sess.Heard()
	}
	return nil
}

// Cancels counts the newest session's response.cancel events.
func (s *Server) Cancels() int {
	if sess := s.latest(); sess != nil {
		return sess.Cancels()
	}
	return 0
}

// Say streams a response on the newest session (see Session.Say).
func (s *Server) Say(ctx context.Context, transcript string, chunks ...[]byte) error {
	if sess := s.latest(); sess != nil {
		return sess.Say(ctx, transcript, chunks...)
	}
	return errNoSession
}

// CallerSpeaks reports the caller's words on the newest session (see
// Session.CallerSpeaks).
func (s *Server) CallerSpeaks(ctx context.Context, text string) error {
	if sess := s.latest(); sess != nil {
		return sess.CallerSpeaks(ctx, text)
	}
	return errNoSession
}

// StartSpeech reports caller speech on the newest session.
func (s *Server) StartSpeech(ctx context.Context, itemID string, audioStartMs int) error {
	if sess := s.latest(); sess != nil {
		return sess.StartSpeech(ctx, itemID, audioStartMs)
	}
	return errNoSession
}

// Fail sends an error on the newest session (see Session.Fail).
func (s *Server) Fail(ctx context.Context, e ports.ModelError) error {
	if sess := s.latest(); sess != nil {
		return sess.Fail(ctx, e)
	}
	return errNoSession
}

// Hangup closes the newest session normally (1000).
func (s *Server) Hangup(ctx context.Context) error {
	if sess := s.latest(); sess != nil {
		return sess.Hangup(ctx, websocket.StatusNormalClosure, "")
	}
	return errNoSession
}
