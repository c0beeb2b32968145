package ports

import (
	"context"
	"encoding/json"
	"time"
)

// Channel is where a conversation happens: what a tool is offered on.
type Channel string

// The gateway's channels.
const (
	ChannelVoice    Channel = "voice"
	ChannelWhatsApp Channel = "whatsapp"
	ChannelSMS      Channel = "sms"
)

// ToolSpec declares a tool to a model: its name (letters, digits, _ and -,
// at most 64), what it does, and the JSON Schema of its arguments (an
// object schema; nil means no arguments).
type ToolSpec struct {
	Name        string
	Description string
	Parameters  json.RawMessage
}

// MCPServer is a remote MCP server the model may use by itself, where its
// backend hosts MCP tools (OpenAI Responses and Realtime). The gateway
// does not run these tools: the model's provider calls the server.
type MCPServer struct {
	Label        string
	URL          string
	AllowedTools []string          // empty: all the server's tools
	Headers      map[string]string // sent to the server; may hold secrets, never logged
	// RequireApproval is "never" (the default) or "always".
	RequireApproval string
}

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	// ID is the model's id of the call, which its result must name.
	ID        string
	Name      string
	Arguments json.RawMessage // a JSON object, as the model wrote it
}

// ToolResult is a tool's answer to one call, as the model will read it:
// Output on success, else Error, a short text the model can talk about
// ("the tool did not answer in time").
type ToolResult struct {
	CallID string
	Output string
	Error  string
}

// ToolRequest is one run of a tool: the call, and whose conversation it is
// in.
type ToolRequest struct {
	Call    ToolCall
	Channel Channel
	// CallID is the phone call's id (voice); User the user's address
	// (WhatsApp or SMS).
	CallID string
	User   string
}

// ToolRunner runs tools the gateway hosts (the user's HTTP tools). Safe for
// concurrent use.
type ToolRunner interface {
	// Tools returns the specs of the tools offered on ch.
	Tools(ch Channel) []ToolSpec

	// Run runs one call and returns its output. It returns within the
	// tool's own timeout or when ctx is done, whichever comes first.
	// Errors: ErrNotFound (no such tool on the channel), ErrUnavailable
	// (the tool did not answer, answered with a failure or in time), ctx's
	// error; their text is safe to show the model (no secret, no URL).
	Run(ctx context.Context, req ToolRequest) (string, error)
}

// CallControl acts on a live phone call through its telephony provider
// (Twilio's REST API): it can end the call or transfer it. Safe for
// concurrent use.
type CallControl interface {
	// End completes the call: the caller is hung up on. Errors:
	// ErrNotFound (no such call, or it is over), ErrRejected,
	// ErrUnavailable, ctx's error.
	End(ctx context.Context, callID string) error

	// Transfer ends the call's connection to the gateway and dials to (an
	// E.164 number or a sip: address) with callerID as the caller id (a
	// number the account owns: the number that was called). The media of
	// the call then ends. Errors as End.
	Transfer(ctx context.Context, callID, to, callerID string) error
}

// DefaultToolTimeout is how long a tool may run when its spec says nothing.
const DefaultToolTimeout = 5 * time.Second
