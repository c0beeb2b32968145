package mediastream

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
)

// MaxMediaPayload is the longest media payload the channel passes on: the
// base64 of one second of 8 kHz mu-law (8,000 bytes, 10,668 characters).
// Twilio sends 20 ms (160 bytes, 216 characters) per frame; a longer
// payload is not a frame of a call, and the speech model would get seconds
// of audio at once. Such a frame is skipped like a malformed one.
const MaxMediaPayload = (8000 + 2) / 3 * 4

// errUnknownEvent marks a well-formed frame whose event the channel does not
// handle; it is skipped like a malformed one.
var errUnknownEvent = errors.New("unknown event")

// decoder turns Twilio frames into CallEvents. It is not safe for
// concurrent use: the goroutine that reads uses it (one at a time).
type decoder struct {
	marks     *playback
	started   bool   // a start frame was decoded
	streamSid string // learned from the start frame
}

// frame holds the raw top-level members of one Twilio message.
type frame struct {
	event, streamSid, start, media, mark, dtmf []byte
}

// decode parses one text frame. The returned event's Audio aliases b. The
// connected frame is dropped (wsstream.ErrIgnore); before the start frame,
// anything but connected, start and stop is an error. Other errors wrap
// ports.ErrInvalidInput (a malformed frame, or an echo of a mark the
// channel did not send) or errUnknownEvent.
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
	var (
		ev  ports.CallEvent
		err error
	)
	switch string(event) {
	case "connected":
		return ports.CallEvent{}, fmt.Errorf("%w: connected", wsstream.ErrIgnore)
	case "start":
		if d.started {
			return ports.CallEvent{}, fmt.Errorf("%w: a second start event", ports.ErrInvalidInput)
		}
		ev.Type = ports.CallStarted
		err = d.decodeStart(f.start, f.streamSid, &ev)
	case "stop":
		ev.Type = ports.CallHungUp
	case "media", "mark", "dtmf":
		if !d.started {
			return ports.CallEvent{}, fmt.Errorf("%w: %s before the start event", ports.ErrInvalidInput, event)
		}
		switch string(event) {
		case "media":
			ev.Type = ports.CallAudio
			err = decodeMedia(f.media, &ev)
		case "mark":
			ev.Type = ports.CallPlayed
			err = d.decodeMark(f.mark, &ev)
		default:
			ev.Type = ports.CallKey
			ev.Key, err = memberString(f.dtmf, "digit")
		}
	default:
		return ports.CallEvent{}, fmt.Errorf("%w %q", errUnknownEvent, event[:min(len(event), 32)]) // the peer's text: bounded
	}
	if err != nil {
		return ports.CallEvent{}, fmt.Errorf("%s: %w", event, err)
	}
	return ev, nil
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
	if ev.Audio, ok = jsonscan.String(payload); !ok {
		return fmt.Errorf("%w: no payload", ports.ErrInvalidInput)
	}
	switch n := len(ev.Audio); {
	case n > MaxMediaPayload:
		return fmt.Errorf("%w: payload of %d characters, over a second of audio", ports.ErrInvalidInput, n)
	case !isBase64(ev.Audio):
		return fmt.Errorf("%w: payload is not padded base64 audio", ports.ErrInvalidInput)
	}
	if ts != nil {
		if ev.MediaMs, ok = jsonscan.Int(ts); !ok {
			return fmt.Errorf("%w: bad timestamp", ports.ErrInvalidInput)
		}
	}
	return nil
}

// decodeMark turns the echo of one of the channel's marks into the played
// position.
func (d *decoder) decodeMark(v []byte, ev *ports.CallEvent) error {
	name, ok := member(v, "name")
	if !ok {
		return fmt.Errorf("%w: no name", ports.ErrInvalidInput)
	}
	var err error
	ev.PlayedMs, err = d.marks.echoed(name)
	return err
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

// member returns the content of the string member name of the object v,
// aliasing v unless it has escapes.
func member(v []byte, name string) ([]byte, bool) {
	it, ok := jsonscan.Object(v)
	if !ok {
		return nil, false
	}
	for key, val, ok := it.Next(); ok; key, val, ok = it.Next() {
		if string(key) == name {
			return jsonscan.String(val)
		}
	}
	return nil, false
}

// memberString returns the string member name of the object v.
func memberString(v []byte, name string) (string, error) {
	if s, ok := member(v, name); ok {
		return string(s), nil
	}
	return "", fmt.Errorf("%w: no %s", ports.ErrInvalidInput, name)
}

// startMessage is the start member of a start frame, as Twilio sends it.
type startMessage struct {
	StreamSid        string            `json:"streamSid"`
	CallSid          string            `json:"callSid"`
	CustomParameters map[string]string `json:"customParameters"`
	MediaFormat      *struct {
		Encoding   string `json:"encoding"`
		SampleRate int    `json:"sampleRate"`
	} `json:"mediaFormat"`
}

// The custom parameters that carry the call's numbers (CallInfo.From and
// To), for an answer that passes them to the stream: Twilio's start frame
// does not carry them otherwise.
const (
	paramFrom = "from"
	paramTo   = "to"
)

// decodeStart reads the start member v; topSid is the frame's own
// streamSid member, which Twilio also sends.
func (d *decoder) decodeStart(v, topSid []byte, ev *ports.CallEvent) error {
	var s startMessage
	if v == nil {
		return fmt.Errorf("%w: no start object", ports.ErrInvalidInput)
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return fmt.Errorf("%w: %v", ports.ErrInvalidInput, err)
	}
	if s.StreamSid == "" {
		if sid, ok := jsonscan.String(topSid); ok {
			s.StreamSid = string(sid)
		}
	}
	if s.StreamSid == "" || s.CallSid == "" {
		return fmt.Errorf("%w: start without streamSid or callSid", ports.ErrInvalidInput)
	}
	if f := s.MediaFormat; f != nil && (f.Encoding != "audio/x-mulaw" || f.SampleRate != ports.Mulaw8k.SampleRate) {
		return fmt.Errorf("%w: media format %.32q at %d Hz, not 8 kHz mu-law", ports.ErrInvalidInput, f.Encoding, f.SampleRate)
	}
	params := s.CustomParameters
	if params == nil {
		params = map[string]string{}
	}
	ev.Call = ports.CallInfo{CallID: s.CallSid, From: params[paramFrom], To: params[paramTo], Params: params}
	delete(params, paramFrom)
	delete(params, paramTo)
	d.streamSid = s.StreamSid
	d.started = true
	return nil
}
