package live

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
)

// backend tracks the delegation's Responses backend, as far as tools need
// it: the responses in progress, the calls the gateway has not answered,
// and whether results wait for a response.create. The decoder (the
// reader) and ToolResult (any goroutine) share it.
type backend struct {
	mu sync.Mutex
	// active holds the responses in progress, by response id (the
	// delegation id, or "-", when the snapshot names none).
	active map[string]bool
	// calls are the calls handed to the gateway and not answered yet.
	calls map[string]bool
	// seen are the calls handed to the gateway, so that each goes once.
	seen map[string]bool
	// owed says results were sent that no response.create has followed.
	owed bool
}

func newBackend() *backend {
	return &backend{active: map[string]bool{}, calls: map[string]bool{}, seen: map[string]bool{}}
}

// answered notes that the item carrying callID's result is sent, and
// reports whether response.create is to follow now. A call the session
// never handed over asks for no response: the backend will say it knows
// no such call.
func (b *backend) answered(callID string) (create bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.calls[callID] {
		return false
	}
	delete(b.calls, callID)
	b.owed = true
	return b.takeCreate()
}

// idle reports whether response.create is to follow now that no response
// is in progress.
func (b *backend) idle() (create bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.takeCreate()
}

// takeCreate says yes, once, when results are owed a response.create, every
// call handed over is answered (a response continues with all the results
// of its calls) and no response is in progress.
func (b *backend) takeCreate() bool {
	if !b.owed || len(b.calls) > 0 || len(b.active) > 0 {
		return false
	}
	b.owed = false
	return true
}

// started and ended track a response's lifecycle; ended reports whether
// none is left in progress.
func (b *backend) started(id string) {
	b.mu.Lock()
	b.active[id] = true
	b.mu.Unlock()
}

func (b *backend) ended(id string) (idle bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.active, id)
	return len(b.active) == 0
}

// call registers a function call; it reports false for one already handed
// over (the same call seen twice).
func (b *backend) call(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[id] {
		return false
	}
	b.seen[id], b.calls[id] = true, true
	return true
}

// backendEvent holds the fields of a nested Responses stream event the
// session uses.
type backendEvent struct {
	Response *struct {
		ID string `json:"id"`
	} `json:"response"`
	Item *struct {
		Type      string  `json:"type"`
		CallID    string  `json:"call_id"`
		Name      string  `json:"name"`
		Arguments *string `json:"arguments"`
	} `json:"item"`
}

// responseEvent decodes the Responses stream event nested in a
// response.event: a function call's item, done, is a SpeechToolCall (once
// per call); the lifecycle of responses is tracked, and the end of the
// last one in progress is evBackendIdle. The rest is ignored.
func (d *decoder) responseEvent(event json.RawMessage, delegationID *string) (ports.SpeechEvent, error) {
	it, ok := jsonscan.Object(event)
	if !ok {
		return ports.SpeechEvent{}, fmt.Errorf("%w: response.event without event", ports.ErrInvalidInput)
	}
	var typ []byte
	for key, val, ok := it.Next(); ok; key, val, ok = it.Next() {
		if string(key) == "type" {
			typ, _ = jsonscan.String(val)
		}
	}
	kind := string(typ)
	switch kind {
	case "response.created", "response.queued", "response.in_progress",
		"response.completed", "response.failed", "response.incomplete",
		"response.output_item.done":
	default:
		return ports.SpeechEvent{}, fmt.Errorf("%w response.event %q", wsstream.ErrIgnore, kind)
	}
	var e backendEvent
	if err := json.Unmarshal(event, &e); err != nil {
		return ports.SpeechEvent{}, fmt.Errorf("%w: response.event %s: %v", ports.ErrInvalidInput, kind, err)
	}
	if kind == "response.output_item.done" {
		return d.functionCall(&e)
	}
	id := "-"
	switch {
	case e.Response != nil && e.Response.ID != "":
		id = e.Response.ID
	case delegationID != nil && *delegationID != "":
		id = *delegationID
	}
	switch kind {
	case "response.completed", "response.failed", "response.incomplete":
		if d.backend.ended(id) {
			return ports.SpeechEvent{Type: evBackendIdle}, nil
		}
	default:
		d.backend.started(id)
	}
	return ports.SpeechEvent{}, fmt.Errorf("%w response.event %q", wsstream.ErrIgnore, kind)
}

// functionCall maps a function_call item to a SpeechToolCall: its call_id,
// name and arguments (a JSON text as the model wrote it; "{}" when empty).
func (d *decoder) functionCall(e *backendEvent) (ports.SpeechEvent, error) {
	if e.Item == nil || e.Item.Type != "function_call" {
		return ports.SpeechEvent{}, fmt.Errorf("%w response.event output item", wsstream.ErrIgnore)
	}
	if e.Item.CallID == "" || e.Item.Name == "" || e.Item.Arguments == nil {
		return ports.SpeechEvent{}, fmt.Errorf("%w: function_call without call_id, name or arguments", ports.ErrInvalidInput)
	}
	if !d.backend.call(e.Item.CallID) {
		return ports.SpeechEvent{}, fmt.Errorf("%w: call %q again", wsstream.ErrIgnore, e.Item.CallID)
	}
	args := json.RawMessage(*e.Item.Arguments)
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	return ports.SpeechEvent{Type: ports.SpeechToolCall, Tool: ports.ToolCall{ID: e.Item.CallID, Name: e.Item.Name, Arguments: args}}, nil
}
