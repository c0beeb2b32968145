package realtime

import (
	"encoding/json"
	"fmt"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
)

// decoder turns server events into SpeechEvents. It is used by one
// goroutine only. The ids of the response and item being streamed are
// remembered so that their many audio deltas share strings.
type decoder struct {
	responseID, itemID string
	// lastWasError is set when the last event decoded was an error, so
	// that a close right after it can be told apart as fatal.
	lastWasError bool
}

// serverEvent holds the fields of every non-audio server event the gateway
// uses.
type serverEvent struct {
	Type         string `json:"type"`
	ItemID       string `json:"item_id"`
	ResponseID   string `json:"response_id"`
	AudioStartMs int    `json:"audio_start_ms"`
	AudioEndMs   int    `json:"audio_end_ms"`
	Transcript   string `json:"transcript"`
	Response     struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Usage  struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	} `json:"response"`
	Error struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
		EventID string `json:"event_id"`
	} `json:"error"`
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
	var typ, responseID, itemID, delta []byte
	for key, val, ok := it.Next(); ok; key, val, ok = it.Next() {
		switch string(key) {
		case "type":
			typ, _ = jsonscan.String(val)
		case "response_id":
			responseID = val
		case "item_id":
			itemID = val
		case "delta":
			delta = val
		}
	}
	if string(typ) == "response.output_audio.delta" {
		return d.audioDelta(responseID, itemID, delta)
	}
	if !used[string(typ)] {
		if typ == nil {
			return ports.SpeechEvent{}, fmt.Errorf("%w: no type", ports.ErrInvalidInput)
		}
		return ports.SpeechEvent{}, fmt.Errorf("%w %q", wsstream.ErrIgnore, typ)
	}
	var e serverEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return ports.SpeechEvent{}, fmt.Errorf("%w: %s: %v", ports.ErrInvalidInput, typ, err)
	}
	ev := ports.SpeechEvent{ResponseID: e.ResponseID, ItemID: e.ItemID}
	switch e.Type {
	case "session.updated":
		ev.Type = ports.SpeechSessionUpdated
	case "input_audio_buffer.speech_started":
		ev.Type = ports.SpeechStarted
		ev.AudioStartMs = e.AudioStartMs
	case "input_audio_buffer.speech_stopped":
		ev.Type = ports.SpeechStopped
		ev.AudioEndMs = e.AudioEndMs
	case "response.created":
		ev.Type = ports.SpeechResponseCreated
		ev.ResponseID = e.Response.ID
	case "response.output_audio.done":
		ev.Type = ports.SpeechAudioDone
	case "response.output_audio_transcript.done":
		ev.Type = ports.SpeechAssistantText
		ev.Text = e.Transcript
	case "conversation.item.input_audio_transcription.completed":
		ev.Type = ports.SpeechCallerText
		ev.Text = e.Transcript
	case "response.done":
		ev.Type = ports.SpeechResponseDone
		ev.ResponseID = e.Response.ID
		ev.Status = e.Response.Status
		ev.Usage = ports.Usage{
			InputTokens:  e.Response.Usage.InputTokens,
			OutputTokens: e.Response.Usage.OutputTokens,
			TotalTokens:  e.Response.Usage.TotalTokens,
		}
	case "conversation.item.truncated":
		ev.Type = ports.SpeechTruncated
		ev.AudioEndMs = e.AudioEndMs
	case "error":
		ev.Type = ports.SpeechError
		ev.Err = &ports.ModelError{Type: e.Error.Type, Code: e.Error.Code, Message: e.Error.Message, EventID: e.Error.EventID}
		d.lastWasError = true
	}
	return ev, nil
}

// used lists the server events decoded into SpeechEvents besides audio
// deltas.
var used = map[string]bool{
	"session.updated":                                       true,
	"input_audio_buffer.speech_started":                     true,
	"input_audio_buffer.speech_stopped":                     true,
	"response.created":                                      true,
	"response.output_audio.done":                            true,
	"response.output_audio_transcript.done":                 true,
	"conversation.item.input_audio_transcription.completed": true,
	"response.done":                                         true,
	"conversation.item.truncated":                           true,
	"error":                                                 true,
}

func (d *decoder) audioDelta(responseID, itemID, delta []byte) (ports.SpeechEvent, error) {
	audio, ok := jsonscan.String(delta)
	if !ok {
		return ports.SpeechEvent{}, fmt.Errorf("%w: audio delta without delta", ports.ErrInvalidInput)
	}
	rid, _ := jsonscan.String(responseID)
	iid, _ := jsonscan.String(itemID)
	if string(rid) != d.responseID {
		d.responseID = string(rid)
	}
	if string(iid) != d.itemID {
		d.itemID = string(iid)
	}
	return ports.SpeechEvent{Type: ports.SpeechAudioDelta, ResponseID: d.responseID, ItemID: d.itemID, Audio: audio}, nil
}
