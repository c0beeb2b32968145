package mediastream

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
	"github.com/convgateway/gateway/ports"
)

// MaxMediaPayload is the longest media payload the channel passes on: the
// base64 of one second of 8 kHz mu-law (8,000 bytes, 10,668 characters).
// Twilio sends 20 ms (160 bytes, 216 characters) per frame; a longer
// payload is not a frame of a call, and the speech model would get seconds
// of audio at once. Such a frame is skipped like a malformed one.
const MaxMediaPayload = (8000 + 2) / 3 * 4

// errUnknownEvent marks a well-formed frame whose event the channel does not
// handle; it is skipped like a malformed one but logged more quietly.
var errUnknownEvent = errors.New("unknown event")

// decoder turns Twilio frames into CallEvents. It remembers the last
// streamSid so that the many media frames of one stream share one string.
// It is not safe for concurrent use.
type decoder struct {
	streamSid string
}

// frame holds the raw top-level members of one Twilio message.
type frame struct {
	event, seq, streamSid, start, media, mark, dtmf []byte
}

// decode parses one text frame. The returned event's Payload aliases b.
// Errors wrap ports.ErrInvalidInput (malformed frame) or errUnknownEvent.
func (d *decoder) decode(b []byte) (ports.CallEvent, error) {
	if !json.Valid(b) {
		return ports.CallEvent{}, fmt.Errorf("%w: not JSON", ports.ErrInvalidInput)
	}
	it, ok := jsonscan.Object(b)
	if !ok {
		return ports.CallEvent{}, fmt.Errorf("%w: not an object", ports.ErrInvalidInput)
	}
	var f frame
	for key, val, ok := it.Next(); ok; key, val, ok = it.Next() {
		switch string(key) {
		case "event":
			f.event = val
		case "sequenceNumber":
			f.seq = val
		case "streamSid":
			f.streamSid = val
		case "start":
			f.start = val
		case "media":
			f.media = val
		case "mark":
			f.mark = val
		case "dtmf":
			f.dtmf = val
		}
	}
	event, ok := jsonscan.String(f.event)
	if !ok {
		return ports.CallEvent{}, fmt.Errorf("%w: no event name", ports.ErrInvalidInput)
	}
	var ev ports.CallEvent
	if f.seq != nil {
		if ev.Seq, ok = jsonscan.Int(f.seq); !ok {
			return ports.CallEvent{}, fmt.Errorf("%w: bad sequenceNumber", ports.ErrInvalidInput)
		}
	}
	if sid, ok := jsonscan.String(f.streamSid); ok {
		ev.StreamSid = d.sid(sid)
	}
	var err error
	switch string(event) {
	case "media":
		ev.Type = ports.CallMedia
		err = decodeMedia(f.media, &ev)
	case "mark":
		ev.Type = ports.CallMark
		ev.Mark, err = memberString(f.mark, "name")
	case "dtmf":
		ev.Type = ports.CallDTMF
		ev.Digit, err = memberString(f.dtmf, "digit")
	case "connected":
		ev.Type = ports.CallConnected
	case "start":
		ev.Type = ports.CallStart
		err = d.decodeStart(f.start, &ev)
	case "stop":
		ev.Type = ports.CallStop
	default:
		return ports.CallEvent{}, fmt.Errorf("%w %q", errUnknownEvent, event[:min(len(event), 32)]) // the peer's text: bounded
	}
	if err != nil {
		return ports.CallEvent{}, fmt.Errorf("%s: %w", event, err)
	}
	return ev, nil
}

// sid returns raw as a string, reusing the remembered one when it matches.
func (d *decoder) sid(raw []byte) string {
	if string(raw) != d.streamSid {
		d.streamSid = string(raw)
	}
	return d.streamSid
}

func decodeMedia(v []byte, ev *ports.CallEvent) error {
	it, ok := jsonscan.Object(v)
	if !ok {
		return fmt.Errorf("%w: no media object", ports.ErrInvalidInput)
	}
	var payload, ts []byte
	for key, val, ok := it.Next(); ok; key, val, ok = it.Next() {
		switch string(key) {
		case "payload":
			payload = val
		case "timestamp":
			ts = val
		}
	}
	if ev.Payload, ok = jsonscan.String(payload); !ok {
		return fmt.Errorf("%w: no payload", ports.ErrInvalidInput)
	}
	switch n := len(ev.Payload); {
	case n > MaxMediaPayload:
		return fmt.Errorf("%w: payload of %d characters, over a second of audio", ports.ErrInvalidInput, n)
	case !isBase64(ev.Payload):
		return fmt.Errorf("%w: payload is not padded base64 audio", ports.ErrInvalidInput)
	}
	if ts != nil {
		if ev.TimestampMs, ok = jsonscan.Int(ts); !ok {
			return fmt.Errorf("%w: bad timestamp", ports.ErrInvalidInput)
		}
	}
	return nil
}

// base64Alphabet marks the characters of standard base64, padding aside.
var base64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

// isBase64 reports whether p is non-empty padded standard base64, as
// Twilio sends audio: whole 4-character quanta of the standard alphabet,
// with at most two "=" at the very end. It scans p without decoding it and
// allocates nothing.
func isBase64(p []byte) bool {
	n := len(p)
	if n == 0 || n%4 != 0 {
		return false
	}
	if p[n-1] == '=' {
		n--
		if p[n-1] == '=' {
			n--
		}
	}
	for _, c := range p[:n] {
		if !base64Alphabet[c] {
			return false
		}
	}
	return true
}

// memberString returns the string member name of the object v.
func memberString(v []byte, name string) (string, error) {
	it, ok := jsonscan.Object(v)
	if ok {
		for key, val, ok := it.Next(); ok; key, val, ok = it.Next() {
			if string(key) == name {
				if s, ok := jsonscan.String(val); ok {
					return string(s), nil
				}
			}
		}
	}
	return "", fmt.Errorf("%w: no %s", ports.ErrInvalidInput, name)
}

// startMessage is the start member of a start frame, as Twilio sends it.
type startMessage struct {
	AccountSid       string            `json:"accountSid"`
	StreamSid        string            `json:"streamSid"`
	CallSid          string            `json:"callSid"`
	Tracks           []string          `json:"tracks"`
	CustomParameters map[string]string `json:"customParameters"`
	MediaFormat      struct {
		Encoding   string `json:"encoding"`
		SampleRate int    `json:"sampleRate"`
		Channels   int    `json:"channels"`
	} `json:"mediaFormat"`
}

func (d *decoder) decodeStart(v []byte, ev *ports.CallEvent) error {
	var s startMessage
	if v == nil {
		return fmt.Errorf("%w: no start object", ports.ErrInvalidInput)
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return fmt.Errorf("%w: %v", ports.ErrInvalidInput, err)
	}
	if s.StreamSid != "" {
		ev.StreamSid = s.StreamSid
		d.streamSid = s.StreamSid
	}
	if ev.StreamSid == "" || s.CallSid == "" {
		return fmt.Errorf("%w: start without streamSid or callSid", ports.ErrInvalidInput)
	}
	ev.CallSid = s.CallSid
	ev.AccountSid = s.AccountSid
	ev.Params = s.CustomParameters
	if ev.Params == nil {
		ev.Params = map[string]string{}
	}
	ev.Encoding = s.MediaFormat.Encoding
	ev.SampleRate = s.MediaFormat.SampleRate
	ev.Channels = s.MediaFormat.Channels
	return nil
}
