package realtimesim

import "encoding/json"

// The server events the simulator sends, in the GA shapes of OpenAI's
// published schema (every event carries an event_id).

type sessionInfo struct {
	Type             string     `json:"type"`
	Object           string     `json:"object"`
	ID               string     `json:"id"`
	Model            string     `json:"model,omitempty"`
	OutputModalities []string   `json:"output_modalities,omitempty"`
	Instructions     string     `json:"instructions,omitempty"`
	Audio            *audioConf `json:"audio,omitempty"`
}

type audioConf struct {
	Input struct {
		Format        format         `json:"format"`
		TurnDetection *turnDetection `json:"turn_detection,omitempty"`
		Transcription *transcription `json:"transcription,omitempty"`
	} `json:"input"`
	Output struct {
		Format format `json:"format"`
		Voice  string `json:"voice,omitempty"`
	} `json:"output"`
}

type format struct {
	Type string `json:"type,omitempty"`
}

type turnDetection struct {
	Type string `json:"type"`
}

type transcription struct {
	Model string `json:"model,omitempty"`
}

type sessionEvent struct {
	EventID string      `json:"event_id"`
	Type    string      `json:"type"`
	Session sessionInfo `json:"session"`
}

type responseInfo struct {
	Object string     `json:"object"`
	ID     string     `json:"id"`
	Status string     `json:"status"`
	Usage  *usageInfo `json:"usage,omitempty"`
	Output []any      `json:"output"` // items; never nil: [] when none
	// StatusDetails says why a response was cancelled.
	StatusDetails *statusDetails `json:"status_details,omitempty"`
}

type statusDetails struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

type usageInfo struct {
	TotalTokens  int `json:"total_tokens"`
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

type responseEvent struct {
	EventID  string       `json:"event_id"`
	Type     string       `json:"type"`
	Response responseInfo `json:"response"`
}

// itemEvent covers output_audio.done and output_audio_transcript.done.
type itemEvent struct {
	EventID      string  `json:"event_id"`
	Type         string  `json:"type"`
	ResponseID   string  `json:"response_id"`
	ItemID       string  `json:"item_id"`
	OutputIndex  int     `json:"output_index"`
	ContentIndex int     `json:"content_index"`
	Transcript   *string `json:"transcript,omitempty"`
}

type speechEvent struct {
	EventID      string `json:"event_id"`
	Type         string `json:"type"`
	ItemID       string `json:"item_id"`
	AudioStartMs *int   `json:"audio_start_ms,omitempty"`
	AudioEndMs   *int   `json:"audio_end_ms,omitempty"`
}

type transcriptionEvent struct {
	EventID      string `json:"event_id"`
	Type         string `json:"type"`
	ItemID       string `json:"item_id"`
	ContentIndex int    `json:"content_index"`
	Transcript   string `json:"transcript"`
	Usage        struct {
		Type    string  `json:"type"`
		Seconds float64 `json:"seconds"`
	} `json:"usage"`
}

type truncatedEvent struct {
	EventID      string `json:"event_id"`
	Type         string `json:"type"`
	ItemID       string `json:"item_id"`
	ContentIndex int    `json:"content_index"`
	AudioEndMs   int    `json:"audio_end_ms"`
}

// functionCallItem is a function_call item of the conversation.
type functionCallItem struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Name      string `json:"name"`
	CallID    string `json:"call_id"`
	Arguments string `json:"arguments"`
}

// outputItemEvent covers response.output_item.added and done.
type outputItemEvent struct {
	EventID     string           `json:"event_id"`
	Type        string           `json:"type"`
	ResponseID  string           `json:"response_id"`
	OutputIndex int              `json:"output_index"`
	Item        functionCallItem `json:"item"`
}

// argumentsEvent covers response.function_call_arguments.delta (Delta)
// and done (Name, Arguments).
type argumentsEvent struct {
	EventID     string  `json:"event_id"`
	Type        string  `json:"type"`
	ResponseID  string  `json:"response_id"`
	ItemID      string  `json:"item_id"`
	OutputIndex int     `json:"output_index"`
	CallID      string  `json:"call_id"`
	Delta       *string `json:"delta,omitempty"`
	Name        *string `json:"name,omitempty"`
	Arguments   *string `json:"arguments,omitempty"`
}

// itemAddedEvent acknowledges conversation.item.create
// (conversation.item.added).
type itemAddedEvent struct {
	EventID        string  `json:"event_id"`
	Type           string  `json:"type"`
	PreviousItemID *string `json:"previous_item_id"`
	Item           any     `json:"item"`
}

// outputItem is a function_call_output item of the conversation.
type outputItem struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	Type   string `json:"type"`
	Status string `json:"status"`
	CallID string `json:"call_id"`
	Output string `json:"output"`
}

type errorEvent struct {
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	Error   errorInfo `json:"error"`
}

type errorInfo struct {
	Type    string  `json:"type"`
	Code    *string `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	EventID *string `json:"event_id"`
}

// toolDecl is a tool of session.update: a function or a hosted MCP
// server.
type toolDecl struct {
	Type            string            `json:"type"`
	Name            string            `json:"name"`
	Description     string            `json:"description"`
	Parameters      json.RawMessage   `json:"parameters"`
	ServerLabel     string            `json:"server_label"`
	ServerURL       string            `json:"server_url"`
	AllowedTools    []string          `json:"allowed_tools"`
	RequireApproval json.RawMessage   `json:"require_approval"`
	Headers         map[string]string `json:"headers"`
}

// clientEvent holds the fields of the client events the simulator reads.
type clientEvent struct {
	Type    string `json:"type"`
	EventID string `json:"event_id"`
	Audio   string `json:"audio"`
	Session struct {
		Type         string `json:"type"`
		Model        string `json:"model"`
		Instructions string `json:"instructions"`
		Audio        struct {
			Input struct {
				Format        format         `json:"format"`
				TurnDetection *turnDetection `json:"turn_detection"`
				Transcription *transcription `json:"transcription"`
			} `json:"input"`
			Output struct {
				Format format `json:"format"`
				Voice  string `json:"voice"`
			} `json:"output"`
		} `json:"audio"`
		OutputModalities []string        `json:"output_modalities"`
		Tools            []toolDecl      `json:"tools"`
		ToolChoice       json.RawMessage `json:"tool_choice"`
	} `json:"session"`
	Item struct {
		Type   string `json:"type"`
		CallID string `json:"call_id"`
		Output string `json:"output"`
	} `json:"item"`
	Response struct {
		Instructions string `json:"instructions"`
	} `json:"response"`
	ItemID       string `json:"item_id"`
	ContentIndex int    `json:"content_index"`
	AudioEndMs   int    `json:"audio_end_ms"`
}
