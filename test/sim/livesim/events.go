package livesim

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
			} `json:"responses"`
		} `json:"delegation"`
	} `json:"session"`
}
