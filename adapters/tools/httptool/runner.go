package httptool

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convgateway/gateway/ports"
)

// MaxOutput is the most of a tool's answer the model is given, in bytes
// (8 KiB); a longer answer is cut and CutMark appended.
const MaxOutput = 8 << 10

// CutMark ends an output that was cut at MaxOutput.
const CutMark = "\n[cut: the tool's answer was longer than 8 KiB]"

// SignatureHeader carries the request's signature: "sha256=" and the hex
// HMAC-SHA256 of the raw body under the runner's secret.
const SignatureHeader = "X-Gateway-Signature"

// Tool is one HTTP tool.
type Tool struct {
	// Spec is what the model is told: name, description, parameters.
	Spec ports.ToolSpec
	// URL receives the POST.
	URL string
	// Timeout bounds one run, answer read included; 0 means
	// ports.DefaultToolTimeout.
	Timeout time.Duration
	// Channels the tool is offered on; empty means every channel.
	Channels []ports.Channel
}

// Options configure a Runner.
type Options struct {
	Tools []Tool
	// Secret signs every request (TOOLS_SIGNING_SECRET); required when
	// there are tools.
	Secret string
	// HTTPClient sends the requests (nil: a client that follows no
	// redirects); each run is bounded by its tool's timeout and context.
	HTTPClient *http.Client
	// Logger receives a line per run (nil discards them).
	Logger *slog.Logger
}

var _ ports.ToolRunner = (*Runner)(nil)

// Runner is a ports.ToolRunner over HTTP tools. It is safe for concurrent
// use and holds no goroutine of its own.
type Runner struct {
	tools  map[string]Tool
	order  []string // the tools' names, in the order of Options.Tools
	secret []byte
	hc     *http.Client
	log    *slog.Logger
}

// New returns a Runner over opts.Tools. It contacts no tool. Errors
// (ports.ErrInvalidInput): a tool without a name or with a name already
// used, a URL that is not an absolute http(s) URL, tools without a secret.
func New(opts Options) (*Runner, error) {
	r := &Runner{tools: make(map[string]Tool, len(opts.Tools)), secret: []byte(opts.Secret), hc: opts.HTTPClient, log: opts.Logger}
	if r.hc == nil {
		r.hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if len(opts.Tools) > 0 && opts.Secret == "" {
		return nil, fmt.Errorf("httptool: new: no signing secret: %w", ports.ErrInvalidInput)
	}
	for _, t := range opts.Tools {
		name := t.Spec.Name
		if _, dup := r.tools[name]; dup || name == "" {
			return nil, fmt.Errorf("httptool: new: tool %q: empty or repeated name: %w", name, ports.ErrInvalidInput)
		}
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("httptool: new: tool %q: not an absolute http(s) URL: %w", name, ports.ErrInvalidInput)
		}
		if t.Timeout <= 0 {
			t.Timeout = ports.DefaultToolTimeout
		}
		t.Channels = slices.Clone(t.Channels)
		r.tools[name] = t
		r.order = append(r.order, name)
	}
	return r, nil
}

// Tools returns the specs of the tools offered on ch, in the order they
// were given. The specs' Parameters are shared: callers must not modify
// them.
func (r *Runner) Tools(ch ports.Channel) []ports.ToolSpec {
	var out []ports.ToolSpec
	for _, name := range r.order {
		if t := r.tools[name]; offered(t, ch) {
			out = append(out, t.Spec)
		}
	}
	return out
}

func offered(t Tool, ch ports.Channel) bool {
	return len(t.Channels) == 0 || slices.Contains(t.Channels, ch)
}

// request is the body POSTed to a tool.
type request struct {
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
	Channel   ports.Channel   `json:"channel"`
	CallSID   string          `json:"call_sid,omitempty"`
	User      string          `json:"user,omitempty"`
}

// Run POSTs the call to its tool and returns the tool's answer (see the
// package documentation). It returns within the tool's timeout or when ctx
// is done. Errors: ports.ErrNotFound (no such tool on req.Channel),
// ports.ErrInvalidInput (the arguments are not a JSON object),
// ports.ErrUnavailable (no answer in time, a status other than 2xx, a
// failed connection), or ctx's error; their text names the tool, never its
// URL.
func (r *Runner) Run(ctx context.Context, req ports.ToolRequest) (string, error) {
	name := req.Call.Name
	t, ok := r.tools[name]
	if !ok || !offered(t, req.Channel) {
		return "", fmt.Errorf("tool %s: %w", name, ports.ErrNotFound)
	}
	body, err := r.body(req)
	if err != nil {
		return "", fmt.Errorf("tool %s: %w", name, err)
	}
	r.log.LogAttrs(ctx, slog.LevelDebug, "tool call", slog.String("tool", name), slog.String("arguments", string(req.Call.Arguments)))

	start := time.Now()
	out, status, failed := r.post(ctx, t, body)
	attrs := []slog.Attr{slog.String("tool", name), slog.Int64("duration_ms", time.Since(start).Milliseconds())}
	if status != 0 {
		attrs = append(attrs, slog.Int("status", status))
	}
	switch {
	case failed != nil && ctx.Err() != nil: // the caller gave up (a hang-up, a barge-in): not the tool's fault
		r.log.LogAttrs(ctx, slog.LevelInfo, "tool cancelled", append(attrs, slog.String("error", failed.cause))...)
		return "", fmt.Errorf("tool %s: %w", name, failed.err)
	case failed != nil:
		r.log.LogAttrs(ctx, slog.LevelWarn, "tool failed", append(attrs, slog.String("error", failed.cause))...)
		return "", fmt.Errorf("tool %s: %w", name, failed.err)
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "tool ran", attrs...)
	return out, nil
}

// body is the signed request's body for req.
func (r *Runner) body(req ports.ToolRequest) ([]byte, error) {
	args := bytes.TrimSpace(req.Call.Arguments)
	if len(args) == 0 {
		args = []byte("{}")
	}
	if args[0] != '{' || !json.Valid(args) {
		return nil, fmt.Errorf("the arguments are not a JSON object: %w", ports.ErrInvalidInput)
	}
	b := request{Tool: req.Call.Name, Arguments: args, Channel: req.Channel}
	if req.Channel == ports.ChannelVoice {
		b.CallSID = req.CallID
	} else {
		b.User = req.User
	}
	return json.Marshal(b)
}

// Sign returns the X-Gateway-Signature value of body under secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// runError is a failed run: err for the caller (safe for the model), cause
// for the log (no URL).
type runError struct {
	err   error
	cause string
}

// post sends body to t and reads its answer; status is the answer's HTTP
// status, 0 when there was none.
func (r *Runner) post(ctx context.Context, t Tool, body []byte) (out string, status int, _ *runError) {
	tctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	fail := func(err error) *runError {
		switch {
		case ctx.Err() != nil:
			return &runError{err: ctx.Err(), cause: ctx.Err().Error()}
		case tctx.Err() != nil:
			return &runError{err: fmt.Errorf("no answer within %s: %w", t.Timeout, ports.ErrUnavailable), cause: "timeout"}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return &runError{err: fmt.Errorf("could not be reached: %w", ports.ErrUnavailable), cause: err.Error()}
	}

	hreq, err := http.NewRequestWithContext(tctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return "", 0, fail(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.5")
	hreq.Header.Set("User-Agent", "convgateway-tools/1")
	hreq.Header.Set(SignatureHeader, Sign(r.secret, body))
	resp, err := r.hc.Do(hreq)
	if err != nil {
		return "", 0, fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", resp.StatusCode, &runError{
			err:   fmt.Errorf("answered with HTTP status %d: %w", resp.StatusCode, ports.ErrUnavailable),
			cause: "status " + resp.Status,
		}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxOutput+1))
	if err != nil {
		return "", resp.StatusCode, fail(err)
	}
	return output(data), resp.StatusCode, nil
}

// output is the model's view of an answer's body (at most MaxOutput+1
// bytes read): valid UTF-8, cut at MaxOutput with CutMark.
func output(data []byte) string {
	if len(data) <= MaxOutput {
		return strings.ToValidUTF8(string(data), "\uFFFD")
	}
	cut := MaxOutput
	for cut > MaxOutput-utf8.UTFMax && !utf8.RuneStart(data[cut]) {
		cut--
	}
	return strings.ToValidUTF8(string(data[:cut]), "\uFFFD") + CutMark
}
