package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/twiliorest"
)

// deadline bounds the whole demo: it takes about a dozen seconds; a step
// that hangs fails it instead of CI.
const deadline = 90 * time.Second

// The demo's made-up credentials: the simulators accept exactly these.
const (
	demoAPIKey     = "sk-demo-offline-not-a-real-key"
	demoAuthToken  = "demo0auth0token0not0a0real0one00" // alphanumeric, as twilio-go requires
	demoAccountSID = "AC0000000000000000000000000000demo"
)

// options are the demo's flags.
type options struct {
	out string // the caller's WAV
	dir string // where the gateway's log and SQLite file go
	// inline is REPLY_INLINE_TIMEOUT, slow how long the slow WhatsApp
	// answer takes (longer).
	inline, slow time.Duration
	speech       string // SPEECH_BACKEND: configs.SpeechRealtime or configs.SpeechLive
}

const usage = `usage: demo [--speech realtime|live] [--out caller.wav] [--dir DIR] [--inline-timeout 2s]

The offline demo: the real gateway against simulated Twilio and OpenAI on
loopback. No credentials, no network. --speech picks the voice model the
call runs on: OpenAI Realtime (the gateway handles the barge-in) or
GPT-Live (full duplex: the model stops by itself).
`

func parse(args []string, stdout io.Writer) (options, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprint(stdout, usage, "\nflags:\n")
		fs.PrintDefaults()
	}
	o := options{}
	fs.StringVar(&o.out, "out", "", "WAV `file` for the audio the caller heard (default: caller-heard.wav in --dir)")
	fs.StringVar(&o.dir, "dir", "", "`directory` for the gateway's log and database (default: a new one under "+os.TempDir()+")")
	fs.DurationVar(&o.inline, "inline-timeout", 2*time.Second, "REPLY_INLINE_TIMEOUT of the demo gateway")
	fs.StringVar(&o.speech, "speech", configs.SpeechRealtime, "SPEECH_BACKEND of the call: `realtime` (OpenAI Realtime) or live (GPT-Live)")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q\n%s", fs.Args(), usage)
	}
	if o.speech != configs.SpeechRealtime && o.speech != configs.SpeechLive {
		return o, fmt.Errorf("--speech must be %s or %s (got %q)", configs.SpeechRealtime, configs.SpeechLive, o.speech)
	}
	if o.inline <= 0 || o.inline >= configs.TwilioWebhookLimit {
		return o, fmt.Errorf("--inline-timeout must be positive and below %s (got %s)", configs.TwilioWebhookLimit, o.inline)
	}
	o.slow = o.inline + 1500*time.Millisecond
	return o, nil
}

// run is the whole program: main only adds the signal context and the exit
// code. args are os.Args; the transcript goes to stdout. It returns an
// error naming the step that went wrong.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parse(args, stdout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "gateway-demo-"); err != nil {
			return fmt.Errorf("make a directory for the demo: %w", err)
		}
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("make the demo directory: %w", err)
	}
	if o.out == "" {
		o.out = filepath.Join(o.dir, "caller-heard.wav")
	}

	began := time.Now()
	w, err := start(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Offline demo: the real gateway (wire.Build: OpenAI %s and Responses adapters,\n"+
		"Twilio Messages sender, SQLite) on %s, against simulated Twilio and OpenAI on loopback.\n"+
		"No credentials, no network. Gateway log (JSON lines): %s\n", w.speech.name(), w.base, w.logPath)

	sceneErr := w.scenes(ctx, o, stdout)
	closeErr := w.close()
	if err := errors.Join(sceneErr, closeErr); err != nil {
		fmt.Fprintf(stdout, "\nThe gateway's log is in %s.\n", w.logPath)
		return err
	}
	problems := w.log.problems()
	fmt.Fprintf(stdout, "\nGateway log: %s (%d lines, %d warnings or errors).\n", w.logPath, w.log.count(), len(problems))
	if len(problems) > 0 {
		return fmt.Errorf("the gateway logged problems: %s", problems[0])
	}
	fmt.Fprintf(stdout, "Demo finished in %.1fs: every step happened as expected.\n", time.Since(began).Seconds())
	return nil
}

// world is the gateway and the simulators around it.
type world struct {
	base    string // http://127.0.0.1:port, also PUBLIC_URL
	cfg     configs.Config
	logPath string
	log     *gatewayLog
	client  *http.Client // plays Twilio's webhook requests
	tl      *timeline    // the call's
	speech  speech       // the speech model's simulator
	openai  *openairest.Server
	twilio  *twiliorest.Server
	gw      *wire.Gateway
	served  chan error
}

// start starts the simulators and the gateway wired to them.
func start(ctx context.Context, o options) (w *world, err error) {
	w = &world{served: make(chan error, 1)}
	w.logPath = filepath.Join(o.dir, "gateway.log")
	if w.log, err = openGatewayLog(w.logPath); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.close())
		}
	}()

	w.tl = &timeline{}
	if o.speech == configs.SpeechLive {
		w.speech = newLive(callScript(), w.tl)
	} else {
		w.speech = newRealtime(callScript(), w.tl)
	}
	w.openai = openairest.New(openairest.Options{APIKey: demoAPIKey})
	w.twilio = twiliorest.New(twiliorest.Options{AccountSID: demoAccountSID, AuthToken: demoAuthToken})
	transport := http.DefaultTransport.(*http.Transport).Clone()
	w.client = &http.Client{Transport: transport, Timeout: configs.TwilioWebhookLimit}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return w, fmt.Errorf("listen on loopback: %w", err)
	}
	w.base = "http://" + ln.Addr().String()

	cfg := configs.Defaults()
	cfg.PublicURL = w.base
	cfg.OpenAIAPIKey = demoAPIKey
	cfg.OpenAIBaseURL = w.openai.URL()
	w.speech.configure(&cfg)
	cfg.TwilioAccountSID = demoAccountSID
	cfg.TwilioAuthToken = demoAuthToken
	cfg.TwilioAPIBaseURL = w.twilio.URL()
	cfg.TwilioFrom = callTo // send_message texts the caller from the number they called
	cfg.DatabaseURL = filepath.Join(o.dir, "gateway.db")
	cfg.ReplyInlineTimeout = o.inline
	cfg.SystemMessage = "You are the booking assistant of a small restaurant. Answer briefly."
	cfg.Voice = "marin"
	cfg.ShutdownDrain = 10 * time.Second
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return w, fmt.Errorf("the demo's configuration: %w", err)
	}
	w.cfg = cfg

	logger := slog.New(slog.NewJSONHandler(w.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	logger.Info("gateway: starting", "config", cfg)
	gw, err := wire.Build(ctx, cfg, logger)
	if err != nil {
		ln.Close()
		return w, fmt.Errorf("build the gateway: %w", err)
	}
	w.gw = gw
	go func() { w.served <- gw.Serve(ln) }()
	logger.Info("gateway: listening", "addr", ln.Addr().String())
	return w, nil
}

// scenes plays the call, then the WhatsApp exchange.
func (w *world) scenes(ctx context.Context, o options, stdout io.Writer) error {
	if err := w.call(ctx, o, stdout); err != nil {
		return fmt.Errorf("phone call: %w", err)
	}
	if err := w.chat(ctx, o, stdout); err != nil {
		return fmt.Errorf("WhatsApp: %w", err)
	}
	return nil
}

// close shuts the gateway down (draining), then the simulators, and closes
// the log. Only what was started is stopped.
func (w *world) close() error {
	var errs []error
	if w.gw != nil {
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.ShutdownDrain)
		errs = append(errs, w.gw.Shutdown(ctx), <-w.served, w.gw.Close())
		cancel()
		w.gw = nil
	}
	if w.speech != nil {
		w.speech.close()
	}
	if w.openai != nil {
		w.openai.Close()
	}
	if w.twilio != nil {
		w.twilio.Close()
	}
	if w.client != nil {
		w.client.CloseIdleConnections()
	}
	if w.log != nil {
		errs = append(errs, w.log.close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop the gateway: %w", err)
	}
	return nil
}
