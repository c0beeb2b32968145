package live

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	oai "github.com/openai/openai-go/v3/live"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
)

// The session's own events, beyond the port's: the decoder hands them to
// the session, which never returns them.
const (
	// evStarted: session.started.
	evStarted ports.SpeechEventType = 100 + iota
	// evClosed: session.closed. Text holds the end's reason, Usage the
	// usage since the last report.
	evClosed
	// evBackendIdle: no delegated response is in progress any more; the
	// session then asks the backend to go on with tool results, if any
	// wait.
	evBackendIdle
)

// fatalCodes are the error codes after which a session cannot go on: the
// account or its key cannot pay for it.
var fatalCodes = map[string]bool{
	"invalid_api_key":            true,
	"insufficient_quota":         true,
	"account_deactivated":        true,
	"billing_hard_limit_reached": true,
}

// decoder turns server events into SpeechEvents. It is used by one
// goroutine at a time (the stream's reader).
type decoder struct {
	turns turns
	// usageSec is the session's cumulative usage last reported: GPT-Live
	// reports totals, the port increments.
	usageSec float64
	// lastWasError is set when the last event decoded was an error, so
	// that a close right after it can be told apart as fatal.
	lastWasError bool
	// closed is the reason of the session.closed decoded, if any: the
	// socket's close that follows ends the session for that reason.
	closed string
	// backend tracks the delegated responses and the tool calls.
	backend *backend
}

// serverEvent holds the fields of every non-audio server event the gateway
// uses. Pointers tell a missing required field from a zero one.
type serverEvent struct {
	Type    string  `json:"type"`
	Delta   *string `json:"delta"`
	StartMs *int64  `json:"start_ms"`
	EndMs   *int64  `json:"end_ms"`
	Reason  string  `json:"reason"`
	Usage   *struct {
		Seconds *float64 `json:"seconds"`
	} `json:"usage"`
	Error *struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	// response.event: the nested Responses stream event, and the
	// delegation it belongs to (null or absent when unknown).
	Event        json.RawMessage `json:"event"`
	DelegationID *string         `json:"delegation_id"`
}

// decode parses one server event. An audio delta's Audio aliases b. Events
// the gateway does not use return wsstream.ErrIgnore; malformed ones an
// error wrapping ports.ErrInvalidInput.
func (d *decoder) decode(b []byte) (ports.SpeechEvent, error) {
	d.lastWasError = false
	if !json.Valid(b) {
		return ports.SpeechEvent{}, fmt.Errorf("%w: not JSON", ports.ErrInvalidInput)
	}
	it, ok := jsonscan.Object(b)
	if !ok {
		return ports.SpeechEvent{}, fmt.Errorf("%w: not an object", ports.ErrInvalidInput)
	}
	var typ, delta []byte
	for key, val, ok := it.Next(); ok; key, val, ok = it.Next() {
		switch string(key) {
		case "type":
			typ, _ = jsonscan.String(val)
		case "delta":
			delta = val
		}
	}
	if string(typ) == "session.output_audio.delta" {
		audio, ok := jsonscan.String(delta)
		if !ok {
			return ports.SpeechEvent{}, fmt.Errorf("%w: audio delta without delta", ports.ErrInvalidInput)
		}
		return ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: d.turns.audio(audio), Audio: audio}, nil
	}
	if typ == nil {
		return ports.SpeechEvent{}, fmt.Errorf("%w: no type", ports.ErrInvalidInput)
	}
	if !used[string(typ)] {
		if !known[string(typ)] { // counted: the SDK has never heard of it
			return ports.SpeechEvent{}, fmt.Errorf("%w: unknown event %q", ports.ErrInvalidInput, typ)
		}
		return ports.SpeechEvent{}, fmt.Errorf("%w %q", wsstream.ErrIgnore, typ)
	}
	var e serverEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return ports.SpeechEvent{}, fmt.Errorf("%w: %s: %v", ports.ErrInvalidInput, typ, err)
	}
	return d.event(&e)
}

// used lists the server events decoded into SpeechEvents besides audio
// deltas.
var used = map[string]bool{
	"session.started":                 true,
	"session.output_transcript.delta": true,
	"session.input_transcript.delta":  true,
	"session.usage.updated":           true,
	"session.closed":                  true,
	"error":                           true,
	"response.event":                  true,
}

// known lists the server event types of the SDK's union of server events
// (the defaults of its variants' Type fields).
var known = func() map[string]bool {
	m := map[string]bool{}
	u := reflect.TypeFor[oai.ServerEventUnion]()
	for i := range u.NumField() {
		if v := u.Field(i).Type; v.Kind() == reflect.Struct {
			if f, ok := v.FieldByName("Type"); ok && f.Tag.Get("default") != "" {
				m[f.Tag.Get("default")] = true
			}
		}
	}
	return m
}()

func (d *decoder) event(e *serverEvent) (ports.SpeechEvent, error) {
	missing := func(field string) (ports.SpeechEvent, error) {
		return ports.SpeechEvent{}, fmt.Errorf("%w: %s without %s", ports.ErrInvalidInput, e.Type, field)
	}
	switch e.Type {
	case "session.started":
		return ports.SpeechEvent{Type: evStarted}, nil
	case "session.output_transcript.delta", "session.input_transcript.delta":
		if e.Delta == nil || e.StartMs == nil || e.EndMs == nil {
			return missing("delta, start_ms or end_ms")
		}
		if e.Type == "session.input_transcript.delta" {
			d.turns.caller()
			return ports.SpeechEvent{Type: ports.SpeechCallerText, Text: *e.Delta}, nil
		}
		return ports.SpeechEvent{Type: ports.SpeechAssistantText, Utterance: d.turns.text(*e.StartMs, *e.EndMs), Text: *e.Delta}, nil
	case "session.usage.updated":
		if e.Usage == nil || e.Usage.Seconds == nil {
			return missing("usage.seconds")
		}
		u := d.usage(*e.Usage.Seconds)
		if u == (ports.Usage{}) {
			return ports.SpeechEvent{}, fmt.Errorf("%w: no new usage", wsstream.ErrIgnore)
		}
		return ports.SpeechEvent{Type: ports.SpeechUsage, Usage: u}, nil
	case "response.event":
		return d.responseEvent(e.Event, e.DelegationID)
	case "session.closed":
		d.closed = e.Reason
		ev := ports.SpeechEvent{Type: evClosed, Text: e.Reason}
		if e.Usage != nil && e.Usage.Seconds != nil {
			ev.Usage = d.usage(*e.Usage.Seconds)
		}
		return ev, nil
	default: // "error"
		if e.Error == nil {
			return missing("error")
		}
		d.lastWasError = true
		return ports.SpeechEvent{Type: ports.SpeechError, Err: &ports.ModelError{
			Type: e.Error.Type, Code: e.Error.Code, Message: e.Error.Message,
			Fatal: fatalCodes[e.Error.Code] || e.Error.Type == "server_error",
		}}, nil
	}
}

// usage turns a cumulative total into the increment since the last one.
func (d *decoder) usage(totalSec float64) ports.Usage {
	if totalSec <= d.usageSec {
		return ports.Usage{}
	}
	inc := time.Duration((totalSec - d.usageSec) * float64(time.Second))
	d.usageSec = totalSec
	return ports.Usage{Duration: inc}
}
