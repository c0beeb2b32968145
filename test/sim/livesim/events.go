package livesim

import "encoding/json"

// The server events the simulator sends, in the shapes of the SDK's types
// (live.SessionStartedEvent, live.OutputTranscriptDeltaEvent, ...): every
// field those mark required, and no event_id where they have none (the
// audio delta).

type sessionResource struct {
	ID           string        `json:"id"`
	ExpiresAt    int64         `json:"expires_at"`
	Model        string        `json:"model"`
	Status       string        `json:"status"`
	Instructions string        `json:"instructions,omitempty"`
	Audio        resourceAudio `json:"audio"`
}

type resourceAudio struct {
	Format struct {
		Type string `json:"type"`
		Rate int    `json:"rate"`
	} `json:"format"`
	Output struct {
		Voice string `json:"voice,omitempty"`
	} `json:"output"`
}

type usage struct {
	Seconds float64 `json:"seconds"`
}

type sessionEvent struct {
	EventID string          `json:"event_id"`
	Type    string          `json:"type"`
	Session sessionResource `json:"session"`
	Reason  string          `json:"reason,omitempty"` // session.closed
	Usage   *usage          `json:"usage,omitempty"`  // session.closed
}

type usageEvent struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Usage   usage  `json:"usage"`
}

// timedEvent covers the transcript deltas (Delta set) and the
// acknowledgements of appended context.
type timedEvent struct {
	EventID       string  `json:"event_id"`
	Type          string  `json:"type"`
	Delta         *string `json:"delta,omitempty"`
	StartMs       int64   `json:"start_ms"`
	EndMs         int64   `json:"end_ms"`
	ClientEventID string  `json:"client_event_id,omitempty"`
}

type ackEvent struct {
	EventID       string `json:"event_id"`
	Type          string `json:"type"`
	ClientEventID string `json:"client_event_id,omitempty"`
}

type errorEvent struct {
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	Error   errorInfo `json:"error"`
}

type errorInfo struct {
	Type          string `json:"type"`
	Code          string `json:"code"`
	Message       string `json:"message"`
	Param         string `json:"param,omitempty"`
	ClientEventID string `json:"client_event_id,omitempty"`
}

// clientEvent holds the fields of the client events the simulator reads
// (after the SDK's types have checked them).
type clientEvent struct {
	Type    string `json:"type"`
	EventID string `json:"event_id"`
	Audio   string `json:"audio"`
	Content string `json:"content"`
	Session struct {
		Model        string `json:"model"`
		Instructions string `json:"instructions"`
		Audio        struct {
			Format struct {
				Type string `json:"type"`
				Rate int    `json:"rate"`
			} `json:"format"`
			Output struct {
				Voice any `json:"voice"`
			} `json:"output"`
		} `json:"audio"`
		Delegation *struct {
			Type      string `json:"type"`
			Responses struct {
				Model string `json:"model"`
				Tools []struct {
					Type        string          `json:"type"`
					Name        string          `json:"name"`
					Description string          `json:"description"`
					Parameters  json.RawMessage `json:"parameters"`
				} `json:"tools"`
			} `json:"responses"`
		} `json:"delegation"`
	} `json:"session"`
	Item struct { // response.item.create
		Type   string          `json:"type"`
		CallID string          `json:"call_id"`
		Output json.RawMessage `json:"output"`
	} `json:"item"`
}

// The events of the delegation's Responses backend: session.delegation.created
// (live.DelegationCreatedEvent), and response.event (live.ResponseEvent)
// wrapping Responses stream events in the shapes of the SDK's responses
// types (ResponseCreatedEvent, ResponseOutputItemDoneEvent, ...).

type delegationEvent struct {
	EventID    string `json:"event_id"`
	Type       string `json:"type"`
	OffsetMs   int64  `json:"offset_ms"`
	Delegation struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Target     string `json:"target"`
		ResponseID string `json:"response_id,omitempty"`
	} `json:"delegation"`
}

type responseEvent struct {
	EventID      string  `json:"event_id"`
	Type         string  `json:"type"`
	DelegationID *string `json:"delegation_id"`
	Event        any     `json:"event"`
}

// backendResponse is a lifecycle snapshot of a Responses response: as
// GPT-Live sends them, without input, with instructions, tools and output
// cleared.
type backendResponse struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	CreatedAt         int64             `json:"created_at"`
	Status            string            `json:"status"`
	Model             string            `json:"model"`
	AccessPrograms    accessPrograms    `json:"access_programs"`
	Error             *struct{}         `json:"error"`
	IncompleteDetails *struct{}         `json:"incomplete_details"`
	Instructions      *string           `json:"instructions"`
	Metadata          map[string]string `json:"metadata"`
	Output            []any             `json:"output"`
	ParallelToolCalls bool              `json:"parallel_tool_calls"`
	Temperature       float64           `json:"temperature"`
	ToolChoice        string            `json:"tool_choice"`
	Tools             []any             `json:"tools"`
	TopP              float64           `json:"top_p"`
}

type accessPrograms struct {
	Cyber string `json:"cyber"`
}

type lifecycleEvent struct {
	Type           string          `json:"type"`
	SequenceNumber int64           `json:"sequence_number"`
	Response       backendResponse `json:"response"`
}

type itemEvent struct {
	Type           string       `json:"type"`
	SequenceNumber int64        `json:"sequence_number"`
	OutputIndex    int64        `json:"output_index"`
	Item           functionCall `json:"item"`
}

type argumentsDoneEvent struct {
	Type           string `json:"type"`
	SequenceNumber int64  `json:"sequence_number"`
	OutputIndex    int64  `json:"output_index"`
	ItemID         string `json:"item_id"`
	Arguments      string `json:"arguments"`
}

type functionCall struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Status    string `json:"status"`
}
