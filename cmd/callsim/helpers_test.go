package main

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/realtimesim"
	"github.com/convgateway/gateway/test/sim/twiliorest"
	"github.com/convgateway/gateway/test/testlog"
)

// testToken is the gateway's TWILIO_AUTH_TOKEN in these tests
// (alphanumeric, as the Twilio REST simulator requires).
const testToken = "callsim0test0auth0token000000001"

// testWait bounds every wait: generous for a busy machine, finite so that
// a bug fails a test instead of hanging it.
const testWait = 60 * time.Second

// env is a gateway served on a loopback port (PUBLIC_URL is its own
// address) with the OpenAI Realtime simulator in automatic mode (a caller
// turn, then 400 ms of quiet, is answered with reply), the OpenAI REST
// simulator (it echoes) and the Twilio REST simulator.
type env struct {
	base   string
	rt     *realtimesim.Server
	openai *openairest.Server
	twilio *twiliorest.Server
	logs   *testlog.Buffer
}

// reply is what the automatic Realtime simulator answers: 600 ms of tone.
var reply = mulaw.Tone(440, 600)

func newEnv(t *testing.T, edit func(*configs.Config)) *env {
	t.Helper()
	e := &env{logs: &testlog.Buffer{}}
	e.rt = realtimesim.New(realtimesim.Options{APIKey: "sk-callsim-test", Auto: &realtimesim.Auto{
		Reply: reply, Transcript: "Hello from the simulator.", CallerTranscript: "Hi.",
	}})
	t.Cleanup(e.rt.Close)
	e.openai = openairest.New(openairest.Options{APIKey: "sk-callsim-test"})
	t.Cleanup(e.openai.Close)
	e.twilio = twiliorest.New(twiliorest.Options{AuthToken: testToken})
	t.Cleanup(e.twilio.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.base = "http://" + ln.Addr().String()
	cfg := configs.Defaults()
	cfg.PublicURL = e.base
	cfg.OpenAIAPIKey = "sk-callsim-test"
	cfg.OpenAIBaseURL = e.openai.URL()
	cfg.OpenAIRealtimeURL = e.rt.URL()
	cfg.TwilioAccountSID = e.twilio.AccountSID()
	cfg.TwilioAuthToken = testToken
	cfg.TwilioAPIBaseURL = e.twilio.URL()
	cfg.DatabaseURL = filepath.Join(t.TempDir(), "gw.db")
	if edit != nil {
		edit(&cfg)
	}
	require.NoError(t, cfg.Validate())
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	gw, err := wire.Build(context.Background(), cfg, log)
	if err != nil {
		ln.Close()
		require.NoError(t, err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		require.NoError(t, gw.Shutdown(ctx))
		require.NoError(t, <-served)
		require.NoError(t, gw.Close())
	})
	return e
}

// callerAudio is what the newest Realtime session received from the
// caller, decoded.
func (e *env) callerAudio(t *testing.T) []byte {
	t.Helper()
	var out []byte
	for _, f := range e.rt.ReceivedAudio() {
		b, err := base64.StdEncoding.DecodeString(string(f))
		require.NoError(t, err)
		out = append(out, b...)
	}
	return out
}

// callsim runs the command with args after the program name and returns
// its output and error.
func callsim(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	var out testlog.Buffer
	err := run(ctx, append([]string{"callsim"}, args...), &out)
	return out.String(), err
}

var _ io.Writer = (*testlog.Buffer)(nil)

// lines returns the lines of out that contain sub.
func lines(out, sub string) []string {
	var found []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, sub) {
			found = append(found, l)
		}
	}
	return found
}
