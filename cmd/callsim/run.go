package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const usage = `usage:
  callsim --url URL [--wav FILE] [--record FILE] [flags]   place a call
  callsim --url URL --whatsapp TEXT [flags]                send a WhatsApp message

callsim plays Twilio against a running gateway: it signs its requests with
the auth token (--auth-token, or TWILIO_AUTH_TOKEN), so a deployment can be
tested before a real number points at it. The token is never printed.

Examples:
  callsim --url https://gw.example.com --wav hello.wav --record heard.wav
  callsim --url http://localhost:5050 --public-url https://abc.ngrok.app --duration 20s
  callsim --url https://gw.example.com --whatsapp "Hi! What are your opening hours?"
`

// webhookLimit is how long Twilio waits for a webhook's answer.
const webhookLimit = 15 * time.Second

// options are callsim's flags.
type options struct {
	url       string // where requests go
	publicURL string // what signatures cover: the gateway's PUBLIC_URL
	authToken string
	from, to  string
	callSid   string
	account   string
	// A call.
	wav      string
	record   string
	duration time.Duration // the call's length; 0: until the assistant has answered
	linger   time.Duration // quiet after the assistant's answer before hanging up
	wait     time.Duration // how long to wait for an answer after the audio
	progress time.Duration
	// A message.
	whatsapp string
}

// parse reads the flags; getenv supplies TWILIO_AUTH_TOKEN and
// TWILIO_ACCOUNT_SID.
func parse(args []string, getenv func(string) string, stdout io.Writer) (options, error) {
	fs := flag.NewFlagSet("callsim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprint(stdout, usage, "\nflags:\n")
		fs.PrintDefaults()
	}
	var o options
	fs.StringVar(&o.url, "url", "", "the gateway's base `URL`, where the requests go, e.g. https://gw.example.com (required)")
	fs.StringVar(&o.publicURL, "public-url", "", "the `URL` signatures cover: the gateway's PUBLIC_URL (default: --url)")
	fs.StringVar(&o.authToken, "auth-token", "", "Twilio auth `token` the gateway checks signatures with (default: $TWILIO_AUTH_TOKEN)")
	fs.StringVar(&o.from, "from", "+15555550100", "the caller's `number` (WhatsApp: whatsapp: is added)")
	fs.StringVar(&o.to, "to", "", "the `number` called (default +15555550199; WhatsApp: whatsapp:+14155238886, the sandbox)")
	fs.StringVar(&o.callSid, "call-sid", "", "CallSid, or MessageSid with --whatsapp (default: a random one)")
	fs.StringVar(&o.account, "account-sid", "", "AccountSid sent in the webhooks (default: $TWILIO_ACCOUNT_SID or a made-up one)")
	fs.StringVar(&o.wav, "wav", "", "WAV `file` the caller says: 8 kHz mono mu-law as it is, 16-bit PCM of any rate converted (default: silence)")
	fs.StringVar(&o.record, "record", "", "write what the caller heard to this WAV `file` (8 kHz mu-law)")
	fs.DurationVar(&o.duration, "duration", 0, "hang up after this long; 0: after the WAV, once the assistant has answered and been quiet for --linger")
	fs.DurationVar(&o.linger, "linger", 2*time.Second, "quiet after the assistant's answer before hanging up")
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "how long to wait for the assistant after the WAV before hanging up")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "print progress this often during a call (0: never)")
	fs.StringVar(&o.whatsapp, "whatsapp", "", "send this `text` as a WhatsApp message instead of calling")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q (see callsim --help)", fs.Args())
	}

	var problems []error
	if o.url == "" {
		problems = append(problems, errors.New("--url is required: the gateway's address, e.g. https://gw.example.com"))
	} else if err := checkURL("--url", o.url); err != nil {
		problems = append(problems, err)
	}
	if o.publicURL == "" {
		o.publicURL = o.url
	} else if err := checkURL("--public-url", o.publicURL); err != nil {
		problems = append(problems, err)
	}
	o.url, o.publicURL = strings.TrimRight(o.url, "/"), strings.TrimRight(o.publicURL, "/")
	if o.authToken == "" {
		o.authToken = getenv("TWILIO_AUTH_TOKEN")
	}
	if o.authToken == "" {
		problems = append(problems, errors.New("no auth token: pass --auth-token or set TWILIO_AUTH_TOKEN (the gateway's TWILIO_AUTH_TOKEN)"))
	}
	if o.account == "" {
		o.account = getenv("TWILIO_ACCOUNT_SID")
	}
	if o.account == "" {
		o.account = "AC00000000000000000000000000000000"
	}
	if o.whatsapp != "" {
		if o.wav != "" || o.record != "" || o.duration != 0 {
			problems = append(problems, errors.New("--whatsapp sends a message: --wav, --record and --duration are for calls"))
		}
		o.from = whatsappAddr(o.from)
		if o.to == "" {
			o.to = "+14155238886"
		}
		o.to = whatsappAddr(o.to)
	} else if o.to == "" {
		o.to = "+15555550199"
	}
	if o.duration < 0 || o.linger < 0 || o.wait <= 0 || o.progress < 0 {
		problems = append(problems, errors.New("--duration, --linger and --progress cannot be negative; --wait must be positive"))
	}
	if err := errors.Join(problems...); err != nil {
		return o, err
	}
	return o, nil
}

// checkURL accepts an http or https URL with a host and no path beyond
// "/".
func checkURL(flagName, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q is not a base URL: want http(s)://host[:port], e.g. https://gw.example.com", flagName, raw)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return fmt.Errorf("%s %q has a path: give the base URL only (callsim adds /incoming-call, /webhook)", flagName, raw)
	}
	return nil
}

// whatsappAddr puts the whatsapp: prefix on a number that lacks it.
func whatsappAddr(n string) string {
	if strings.HasPrefix(n, "whatsapp:") {
		return n
	}
	return "whatsapp:" + n
}

// sid makes a random Twilio-style id: prefix and 32 hex digits.
func sid(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return prefix + hex.EncodeToString(b)
}

// run is the whole program: main only adds the signal context and the exit
// code. args are os.Args; the report goes to stdout. Cancelling ctx during
// a call hangs up.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parse(args, os.Getenv, stdout)
	if err != nil {
		return err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: webhookLimit}
	if o.whatsapp != "" {
		return message(ctx, o, client, stdout)
	}
	return call(ctx, o, client, stdout)
}
