package livesim

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
	"github.com/convgateway/gateway/test/sim/internal/simsess"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

// Path is where the simulator serves the Live API.
const Path = "/v1/live/sessions"

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
	// OnEvent, when set, sees every server event sent (valid only during
	// the call), right before it is written. Calls may come from several
	// goroutines.
	OnEvent func(event []byte)
	// Gap is how long the model pauses before speaking again when the
	// caller has not spoken since its last words; 0 means 2 s.
	Gap time.Duration
}

// Auto is the automatic conversation policy.
type Auto struct {
	// Reply is the assistant's answer, raw mu-law; nil means one second of
	// a 440 Hz tone.
	Reply []byte
	// Transcript is the reply's transcript.
	Transcript string
	// CallerTranscript is the transcript of each caller turn.
	CallerTranscript string
	// Turns, when set, script the caller's turns in order: the n-th turn
	// is transcribed and answered as Turns[n-1] says. Turns beyond them,
	// and commentary, get CallerTranscript, Reply and Transcript.
	Turns []Turn
	// Silence is how long a pause ends a caller turn; 0 means 400 ms.
	Silence time.Duration
	// Yield, when set, is how much caller speech the model hears while
	// it speaks before it yields: it stops, and transcribes the caller's
	// first word then (the rest at the end of the turn). Zero stops it at
	// the first caller audio that is not silence, and transcribes the
	// whole turn at its end.
	Yield time.Duration
	// ChunkEvery paces the reply's 20 ms chunks; 0 means 20 ms (GPT-Live
	// speaks in real time).
	ChunkEvery time.Duration
}

// Turn is one scripted turn of the Auto policy: what the caller is heard
// saying, and the model's answer (raw mu-law, and its transcript).
type Turn struct {
	Caller     string
	Reply      []byte
	Transcript string
}

func (a *Auto) silence() time.Duration {
	if a.Silence > 0 {
		return a.Silence
	}
	return 400 * time.Millisecond
}

func (a *Auto) chunkEvery() time.Duration {
	if a.ChunkEvery > 0 {
		return a.ChunkEvery
	}
	return 20 * time.Millisecond
}

// Server is a GPT-Live simulator. Its peer.Speech methods act on the
// session opened most recently. Safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	srv    *httptest.Server
	reply  [][]byte   // Auto.Reply as base64 chunks of 20 ms
	turns  [][][]byte // the Auto.Turns replies, likewise
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sessions simsess.Registry[*Session]
}

var _ peer.Speech = (*Server)(nil)

// New starts a simulator on a loopback port.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Gap <= 0 {
		opts.Gap = 2 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts, log: log, ctx: ctx, cancel: cancel}
	if a := opts.Auto; a != nil {
		audio := a.Reply
		if audio == nil {
			audio = mulaw.Tone(440, 1000)
		}
		s.reply = chunks(audio)
		for _, t := range a.Turns {
			s.turns = append(s.turns, chunks(t.Reply))
		}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// chunks cuts raw mu-law into base64 chunks of 20 ms.
func chunks(audio []byte) [][]byte {
	var out [][]byte
	for len(audio) > 0 {
		n := min(160, len(audio))
		out = append(out, []byte(base64.StdEncoding.EncodeToString(audio[:n])))
		audio = audio[n:]
	}
	return out
}

// URL returns the WebSocket URL of the Live endpoint.
func (s *Server) URL() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + Path }

// Close closes every session at once (no close handshake) and stops the
// server, waiting for its goroutines.
func (s *Server) Close() {
	s.cancel()
	for _, sess := range s.sessions.All() {
		_ = sess.conn.CloseNow()
	}
	s.wg.Wait()
	s.srv.Close()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || auth == "" || (s.opts.APIKey != "" && auth != s.opts.APIKey):
		refuse(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided.")
		return
	case r.URL.Path != Path:
		refuse(w, http.StatusNotFound, "not_found", "Unknown path.")
		return
	case r.URL.RawQuery != "":
		refuse(w, http.StatusBadRequest, "unknown_parameter", "Connect without query parameters; the model goes in session.start.")
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Warn("livesim: accept", "err", err)
		return
	}
	conn.SetReadLimit(16 << 20)
	sess := newSession(s, conn)
	s.wg.Add(1)
	defer s.wg.Done()
	s.sessions.Add(sess)
	if s.ctx.Err() != nil { // Close has run and will not see this session
		_ = conn.CloseNow()
	}
	sess.run(s.ctx)
}

func refuse(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","code":%q,"message":%q}}`, code, message)
}

// Sessions returns every session opened so far, oldest first.
func (s *Server) Sessions() []*Session { return s.sessions.All() }

// Latest waits until a session exists and returns the newest.
func (s *Server) Latest(ctx context.Context) (*Session, error) {
	sess, err := s.sessions.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("livesim: %w", err)
	}
	return sess, nil
}

func (s *Server) latest() *Session {
	sess, _ := s.sessions.Newest()
	return sess
}

var errNoSession = errors.New("livesim: no session")

// WaitSession waits until the newest session has started and returns its
// configuration.
func (s *Server) WaitSession(ctx context.Context) (ports.SpeechConfig, error) {
	sess, err := s.Latest(ctx)
	if err != nil {
		return ports.SpeechConfig{}, err
	}
	return sess.WaitStarted(ctx)
}

// ReceivedAudio returns the newest session's caller audio chunks.
func (s *Server) ReceivedAudio() [][]byte {
	if sess := s.latest(); sess != nil {
		return sess.ReceivedAudio()
	}
	return nil
}

// Responds counts the newest session's session.commentary.append events.
func (s *Server) Responds() int {
	if sess := s.latest(); sess != nil {
		return sess.Commentaries()
	}
	return 0
}

// Heard returns none: GPT-Live is told nothing of what the caller heard.
func (s *Server) Heard() []peer.Heard { return nil }

// on runs f on the newest session.
func (s *Server) on(f func(*Session) error) error {
	if sess := s.latest(); sess != nil {
		return f(sess)
	}
	return errNoSession
}

// Say makes the newest session's model speak (see Session.Say).
func (s *Server) Say(ctx context.Context, transcript string, chunks ...[]byte) error {
	return s.on(func(sess *Session) error { return sess.Say(ctx, transcript, chunks...) })
}

// CallerSpeaks transcribes caller words on the newest session.
func (s *Server) CallerSpeaks(ctx context.Context, text string) error {
	return s.on(func(sess *Session) error { return sess.CallerSpeaks(ctx, text) })
}

// Fail sends an error on the newest session (see Session.Fail).
func (s *Server) Fail(ctx context.Context, e ports.ModelError) error {
	return s.on(func(sess *Session) error { return sess.Fail(ctx, e) })
}

// Hangup ends the newest session from the model's side (see
// Session.Hangup).
func (s *Server) Hangup(ctx context.Context) error {
	return s.on(func(sess *Session) error { return sess.Hangup(ctx, "remote_hangup") })
}
