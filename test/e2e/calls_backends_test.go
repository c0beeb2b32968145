package e2e_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/livesim"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

// The call tests run over both speech models the gateway can be built
// with (SPEECH_BACKEND): each test is written once against speechSim and
// modelSession, small views of the two simulators, and runs as a subtest
// per backend wherever the behaviour is the model's. What differs between
// the models (how a barge-in works, what the session is configured with)
// is tested per backend, with each simulator's own API.

// speechBackend is a speech model the gateway can be built with, and how
// to start its simulator.
type speechBackend struct {
	name string // SPEECH_BACKEND
	// start starts the backend's simulator with o; it is closed when the
	// test ends.
	start func(tb testing.TB, o simOptions) speechSim
	// point points the gateway's Config at a model's WebSocket URL.
	point func(c *configs.Config, url string)
	// path is the path (and query) of the model's WebSocket URL.
	path string
	// session is the configuration a session of the gateway built with c
	// must receive, as the simulator reports it (modelSession.configured).
	session func(c configs.Config) any
	// usage is what the model reports of its use: the key of the call
	// summary's usage, and the metric that adds it up.
	usage, usageMetric string
}

var (
	realtimeBackend = speechBackend{
		name:  configs.SpeechRealtime,
		start: startRealtime,
		point: func(c *configs.Config, url string) {
			c.SpeechBackend, c.OpenAIRealtimeURL = configs.SpeechRealtime, url
		},
		path: "/v1/realtime?model=" + configs.DefaultRealtimeModel,
		session: func(c configs.Config) any {
			return realtimesim.Config{Instructions: c.SystemMessage, Voice: c.Voice, TurnDetection: c.TurnDetection,
				TranscriptionModel: c.OpenAITranscriptionModel}
		},
		usage:       "total_tokens",
		usageMetric: `gateway_openai_tokens_total{kind="output"}`,
	}
	liveBackend = speechBackend{
		name:  configs.SpeechLive,
		start: startLive,
		point: func(c *configs.Config, url string) { c.SpeechBackend, c.OpenAILiveURL = configs.SpeechLive, url },
		path:  livesim.Path,
		session: func(c configs.Config) any {
			return livesim.Config{Model: c.OpenAILiveModel, Instructions: c.SystemMessage, Voice: c.Voice,
				Format: "audio/pcmu@8000", Delegation: "responses", BackendModel: c.OpenAIModel}
		},
		usage:       "seconds",
		usageMetric: "gateway_openai_speech_seconds_total",
	}
	// speechBackends are the backends the tests of the model's behaviour
	// run over.
	speechBackends = []speechBackend{realtimeBackend, liveBackend}
)

// simOptions are what a test asks of either simulator.
type simOptions struct {
	// Reply, when not empty, makes the model speak on its own: the
	// greeting when the gateway asks for one, and an answer after each
	// caller turn (caller audio that is not silence, then a pause), with
	// Reply as the transcript.
	Reply string
	// ReplyAudio is the answer's audio (raw mu-law); nil means the
	// simulator's own.
	ReplyAudio []byte
	// CallerWords is what the model hears the caller say in each turn.
	CallerWords string
	// SayToolOutputs makes the Realtime model's first answer after tool
	// results say their outputs instead of Reply (GPT-Live's always does).
	SayToolOutputs bool
	// HandshakeDelay delays every WebSocket handshake (a simulated
	// internet).
	HandshakeDelay time.Duration
}

// speechSim is a running simulator of a speech model.
type speechSim interface {
	// url is the simulator's WebSocket URL.
	url() string
	// latest waits until a session exists and returns the newest, whether
	// or not the gateway has configured it yet.
	latest(ctx context.Context) (modelSession, error)
	// sessions returns every session opened so far, oldest first.
	sessions() []modelSession
}

// modelSession is one session of a simulated speech model, driven as the
// model would.
type modelSession interface {
	// configured waits until the gateway has configured the session and
	// returns the configuration as the simulator received it (a
	// realtimesim.Config or a livesim.Config).
	configured(ctx context.Context) (any, error)
	// Say makes the model speak one utterance: the given base64 mu-law
	// chunks, then its transcript.
	Say(ctx context.Context, transcript string, chunks ...[]byte) error
	// CallerSpeaks makes the model hear the caller say text, in the
	// model's way: speech started, stopped and the transcript (Realtime);
	// the transcript only (GPT-Live).
	CallerSpeaks(ctx context.Context, text string) error
	// Fail sends an error event; a fatal one also ends the session.
	Fail(ctx context.Context, e ports.ModelError) error
	// Hangup ends the session from the model's side, as a normal close.
	Hangup(ctx context.Context) error
	// Expire ends the session from the model's side as its time limit
	// does.
	Expire(ctx context.Context) error
	// Raw sends an event as it is.
	Raw(ctx context.Context, event []byte) error
	// Responds counts the gateway's requests to speak now.
	Responds() int
	// ReceivedAudio returns the caller audio received, in order, as sent.
	ReceivedAudio() [][]byte
	// Frames counts the caller audio chunks received.
	Frames() int
	// Done is closed when the session's connection has ended.
	Done() <-chan struct{}
}

// malformedEvents are events of each backend the gateway must skip: not
// JSON, a required field missing, an unknown type, no type.
var malformedEvents = map[string][]string{
	configs.SpeechRealtime: {
		`{{{`,
		`{"type":"response.output_audio.delta","response_id":"r","item_id":"i"}`,
		`{"type":"something.new","x":1}`,
		`{"no":"type"}`,
	},
	configs.SpeechLive: {
		`{{{`,
		`{"type":"session.output_audio.delta"}`,
		`{"type":"session.output_transcript.delta","delta":"hi"}`,
		`{"type":"something.new","x":1}`,
		`{"no":"type"}`,
	},
}

// sim is a simulator's server as a speechSim: wrap makes its sessions
// modelSessions.
type sim[S any] struct {
	srv interface {
		URL() string
		Latest(ctx context.Context) (S, error)
		Sessions() []S
	}
	wrap func(S) modelSession
}

func (s sim[S]) url() string { return s.srv.URL() }

func (s sim[S]) latest(ctx context.Context) (modelSession, error) {
	sess, err := s.srv.Latest(ctx)
	if err != nil {
		return nil, err
	}
	return s.wrap(sess), nil
}

func (s sim[S]) sessions() []modelSession {
	var out []modelSession
	for _, sess := range s.srv.Sessions() {
		out = append(out, s.wrap(sess))
	}
	return out
}

// Realtime.

type rtSim struct {
	sim[*realtimesim.Session]
	srv    *realtimesim.Server
	events *serverEvents
}

func startRealtime(tb testing.TB, o simOptions) speechSim {
	s := &rtSim{events: &serverEvents{}}
	opts := realtimesim.Options{APIKey: callAPIKey, OnEvent: s.events.record, HandshakeDelay: o.HandshakeDelay}
	if o.Reply != "" {
		opts.Auto = &realtimesim.Auto{Transcript: o.Reply, Reply: o.ReplyAudio, CallerTranscript: o.CallerWords,
			SayToolOutputs: o.SayToolOutputs}
	}
	s.srv = realtimesim.New(opts)
	tb.Cleanup(s.srv.Close)
	s.sim = sim[*realtimesim.Session]{srv: s.srv, wrap: func(sess *realtimesim.Session) modelSession { return rtSession{sess} }}
	return s
}

// rtSession is a Realtime session seen as a modelSession; its Session
// offers the rest of realtimesim's API.
type rtSession struct{ *realtimesim.Session }

func (s rtSession) configured(ctx context.Context) (any, error) { return s.WaitConfig(ctx) }

func (s rtSession) Hangup(ctx context.Context) error {
	return s.Session.Hangup(ctx, websocket.StatusNormalClosure, "bye")
}

// Expire closes the session as the API does at its 60-minute limit.
func (s rtSession) Expire(ctx context.Context) error {
	return s.Session.Hangup(ctx, websocket.StatusGoingAway, "Your session hit the maximum duration of 60 minutes.")
}

// GPT-Live.

func startLive(tb testing.TB, o simOptions) speechSim {
	opts := livesim.Options{APIKey: callAPIKey}
	if o.Reply != "" {
		opts.Auto = &livesim.Auto{Transcript: o.Reply, Reply: o.ReplyAudio, CallerTranscript: o.CallerWords}
	}
	srv := livesim.New(opts)
	tb.Cleanup(srv.Close)
	s := sim[*livesim.Session]{srv: srv, wrap: func(sess *livesim.Session) modelSession { return liveSession{sess} }}
	if d := o.HandshakeDelay; d > 0 {
		s.srv = slowLive{srv, slowHandshakes(tb, srv.URL(), d)}
	}
	return s
}

// slowLive is a GPT-Live simulator reached through slowHandshakes.
type slowLive struct {
	*livesim.Server
	url string
}

func (s slowLive) URL() string { return s.url }

// slowHandshakes serves a proxy to the WebSocket server at target whose
// handshakes take delay, for a simulator that cannot delay its own, and
// returns the URL to dial instead of target. It stops when the test ends.
func slowHandshakes(tb testing.TB, target string, delay time.Duration) string {
	u, err := url.Parse(target)
	require.NoError(tb, err)
	path := u.RequestURI()
	u.Scheme, u.Path, u.RawQuery = "http", "", ""
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
			proxy.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	tb.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + path
}

// liveSession is a GPT-Live session seen as a modelSession; its Session
// offers the rest of livesim's API.
type liveSession struct{ *livesim.Session }

func (s liveSession) configured(ctx context.Context) (any, error) {
	if _, err := s.WaitStarted(ctx); err != nil {
		return nil, err
	}
	return s.Config(), nil
}

func (s liveSession) Hangup(ctx context.Context) error { return s.Session.Hangup(ctx, "remote_hangup") }

// Expire ends the session as GPT-Live does when its time is up.
func (s liveSession) Expire(ctx context.Context) error { return s.Session.Hangup(ctx, "expired") }

func (s liveSession) Responds() int { return s.Commentaries() }

func (s liveSession) Frames() int { return len(s.ReceivedAudio()) }
