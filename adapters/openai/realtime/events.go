package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
)

// decoder turns server events into SpeechEvents. It is used by one
// goroutine at a time. The id of the item being streamed is remembered so
// that its many audio deltas share one string, and the audio of each item
// is counted (spoken) so that Heard never truncates beyond it. The
// responses' life is tracked (turns) for the tool results, and tool calls
// are reported once each (calls).
type decoder struct {
	log *slog.Logger // nil discards
	// opened is set once session.updated has confirmed the configuration:
	// until then that event is returned (as SpeechUnknown) to configure,
	// afterwards it is ignored.
	opened bool
	// lastWasError is set when the last event decoded was an error, so
	// that a close right after it can be told apart as fatal.
	lastWasError bool

	itemID    string
	itemBytes *atomic.Int64 // spoken's count for itemID
	spoken    spoken

	turns turns // shared with the senders
	calls calls
	// flush is the event id of a response.create the last event made due
	// (tool results waited for the model to be free); the session sends
	// it.
	flush string
}

// serverEvent holds the fields of every non-audio server event the gateway
// uses.
type serverEvent struct {
	Type       string `json:"type"`
	ItemID     string `json:"item_id"`
	Transcript string `json:"transcript"`
	// A function call's end (response.function_call_arguments.done), or
	// the item of response.output_item.done or conversation.item.added.
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Item      struct {
		Type      string `json:"type"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
		Status    string `json:"status"`
	} `json:"item"`
	Response struct {
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
	var typ, itemID, delta []byte
	for key, val, ok := it.Next(); ok; key, val, ok = it.Next() {
		switch string(key) {
		case "type":
			typ, _ = jsonscan.String(val)
		case "item_id":
			itemID = val
		case "delta":
			delta = val
		}
	}
	if string(typ) == "response.output_audio.delta" {
		return d.audioDelta(itemID, delta)
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
	return d.event(&e)
}

// event maps a decoded server event other than an audio delta.
func (d *decoder) event(e *serverEvent) (ports.SpeechEvent, error) {
	ev := ports.SpeechEvent{Utterance: e.ItemID}
	switch e.Type {
	case "session.updated":
		if d.opened {
			return ports.SpeechEvent{}, fmt.Errorf("%w %q", wsstream.ErrIgnore, e.Type)
		}
		return ports.SpeechEvent{Type: ports.SpeechUnknown}, nil
	case "input_audio_buffer.speech_started":
		ev.Type = ports.SpeechCallerStarted
		d.flush = d.turns.speech(true)
	case "input_audio_buffer.speech_stopped":
		ev.Type = ports.SpeechCallerStopped
		d.flush = d.turns.speech(false)
	case "conversation.item.added", "conversation.item.created":
		if e.Item.Type == "function_call_output" {
			d.flush = d.turns.resultAdded()
		}
		return ports.SpeechEvent{}, fmt.Errorf("%w %q", wsstream.ErrIgnore, e.Type)
	case "response.output_audio.done":
		ev.Type = ports.SpeechUtteranceDone
	case "response.output_audio_transcript.done":
		ev.Type, ev.Text, ev.Final = ports.SpeechAssistantText, e.Transcript, true
	case "conversation.item.input_audio_transcription.completed":
		ev.Type, ev.Text, ev.Final = ports.SpeechCallerText, e.Transcript, true
	case "response.created":
		d.turns.created()
		return ports.SpeechEvent{}, fmt.Errorf("%w %q", wsstream.ErrIgnore, e.Type)
	case "response.done":
		d.flush = d.turns.done()
		return d.responseDone(e)
	case "response.function_call_arguments.done":
		return d.toolCall(e.CallID, e.Name, e.Arguments, "")
	case "response.output_item.done":
		if e.Item.Type != "function_call" {
			return ports.SpeechEvent{}, fmt.Errorf("%w %q of a %s", wsstream.ErrIgnore, e.Type, e.Item.Type)
		}
		return d.toolCall(e.Item.CallID, e.Item.Name, e.Item.Arguments, e.Item.Status)
	case "mcp_list_tools.failed", "response.mcp_call.failed":
		d.logf(slog.LevelWarn, "model's MCP tool failed", "event", e.Type, "item_id", e.ItemID)
		return ports.SpeechEvent{}, fmt.Errorf("%w %q", wsstream.ErrIgnore, e.Type)
	case "error":
		return d.errorEvent(e)
	}
	return ev, nil
}

// errorEvent maps an error. The refusal of a response.create the session
// sent after tool results, because a response is in progress, is only
// logged (see turns.refused).
func (d *decoder) errorEvent(e *serverEvent) (ports.SpeechEvent, error) {
	d.lastWasError = true
	ours, flush := d.turns.refused(e.Error.EventID, e.Error.Code)
	d.flush = flush
	if ours {
		d.logf(slog.LevelDebug, "model busy: tool results go on with its response", "code", e.Error.Code, "event_id", e.Error.EventID)
		return ports.SpeechEvent{}, fmt.Errorf("%w: %s", wsstream.ErrIgnore, e.Error.Code)
	}
	d.logf(slog.LevelInfo, "model error", "type", e.Error.Type, "code", e.Error.Code,
		"message", e.Error.Message, "event_id", e.Error.EventID)
	return ports.SpeechEvent{Type: ports.SpeechError,
		Err: &ports.ModelError{Type: e.Error.Type, Code: e.Error.Code, Message: e.Error.Message}}, nil
}

// toolCall reports a function call whose arguments are complete, the
// first time its id is seen. A call cut short (its item incomplete, or its
// arguments not a JSON object: the API ends the arguments of a cancelled
// response too) is logged and not run.
func (d *decoder) toolCall(callID, name, arguments, status string) (ports.SpeechEvent, error) {
	if callID == "" || name == "" {
		return ports.SpeechEvent{}, fmt.Errorf("%w: function call without call_id or name", ports.ErrInvalidInput)
	}
	args := json.RawMessage(arguments)
	if strings.TrimSpace(arguments) == "" {
		args = json.RawMessage(`{}`)
	}
	var obj map[string]json.RawMessage
	if status == "incomplete" || json.Unmarshal(args, &obj) != nil || obj == nil {
		if d.calls.first(callID) {
			d.logf(slog.LevelInfo, "model's tool call cut short: not run", "call_id", callID, "tool", name, "status", status)
		}
		return ports.SpeechEvent{}, fmt.Errorf("%w: tool call %s cut short", wsstream.ErrIgnore, callID)
	}
	if !d.calls.first(callID) {
		return ports.SpeechEvent{}, fmt.Errorf("%w: tool call %s again", wsstream.ErrIgnore, callID)
	}
	return ports.SpeechEvent{Type: ports.SpeechToolCall, Tool: ports.ToolCall{ID: callID, Name: name, Arguments: args}}, nil
}

// responseDone reports a response's usage. A response that ended for
// another reason than completion or cancellation is logged: the port has
// no event for it.
func (d *decoder) responseDone(e *serverEvent) (ports.SpeechEvent, error) {
	if s := e.Response.Status; s != "completed" && s != "cancelled" {
		d.logf(slog.LevelWarn, "model response ended", "response_id", e.Response.ID, "status", s)
	}
	u := ports.Usage{
		InputTokens:  e.Response.Usage.InputTokens,
		OutputTokens: e.Response.Usage.OutputTokens,
		TotalTokens:  e.Response.Usage.TotalTokens,
	}
	if u == (ports.Usage{}) {
		return ports.SpeechEvent{}, fmt.Errorf("%w: response.done without usage", wsstream.ErrIgnore)
	}
	return ports.SpeechEvent{Type: ports.SpeechUsage, Usage: u}, nil
}

func (d *decoder) logf(level slog.Level, msg string, args ...any) {
	if d.log != nil {
		d.log.Log(context.Background(), level, msg, args...)
	}
}

// used lists the server events decoded into SpeechEvents besides audio
// deltas.
var used = map[string]bool{
	"session.updated":                                       true,
	"input_audio_buffer.speech_started":                     true,
	"input_audio_buffer.speech_stopped":                     true,
	"response.output_audio.done":                            true,
	"response.output_audio_transcript.done":                 true,
	"conversation.item.input_audio_transcription.completed": true,
	"conversation.item.added":                               true,
	"conversation.item.created":                             true,
	"response.created":                                      true,
	"response.done":                                         true,
	"response.function_call_arguments.done":                 true,
	"response.output_item.done":                             true,
	"mcp_list_tools.failed":                                 true,
	"response.mcp_call.failed":                              true,
	"error":                                                 true,
}

func (d *decoder) audioDelta(itemID, delta []byte) (ports.SpeechEvent, error) {
	audio, ok := jsonscan.String(delta)
	if !ok {
		return ports.SpeechEvent{}, fmt.Errorf("%w: audio delta without delta", ports.ErrInvalidInput)
	}
	iid, _ := jsonscan.String(itemID)
	if string(iid) != d.itemID || d.itemBytes == nil {
		d.itemID = string(iid)
		d.itemBytes = d.spoken.item(d.itemID)
	}
	d.itemBytes.Add(int64(decodedLen(audio)))
	return ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: d.itemID, Audio: audio}, nil
}
