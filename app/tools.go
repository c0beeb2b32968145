package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/convgateway/gateway/ports"
)

// Defaults for Tools.
const (
	// DefaultToolHoldAfter is how long a tool may run on a call before the
	// assistant says a short holding phrase.
	DefaultToolHoldAfter = 1500 * time.Millisecond
	// DefaultMaxToolCallsPerTurn bounds the tool calls of one turn of the
	// conversation: past it, the model is told to answer without tools.
	DefaultMaxToolCallsPerTurn = 3
)

// The built-in tools of calls.
const (
	ToolEndCall     = "end_call"
	ToolTransfer    = "transfer_call"
	ToolSendMessage = "send_message"
)

// Tools is what the assistant may do besides talking: the built-in call
// tools (ending the call, transferring it, texting the caller), each on only
// where it can work, the user's own tools (Runner) and MCP servers. The zero
// value offers nothing.
type Tools struct {
	// Runner runs the user's tools (HTTP tools); nil: none.
	Runner ports.ToolRunner
	// MCP servers the model may use by itself.
	MCP []ports.MCPServer
	// Control ends and transfers calls: end_call needs it, transfer_call
	// needs it and TransferTo.
	Control    ports.CallControl
	TransferTo string // E.164 or sip:
	// Sender and TextFrom (TWILIO_FROM: "whatsapp:+...", "+..." or
	// "MG...") enable send_message on calls.
	Sender   ports.MessageSender
	TextFrom string
	// HoldAfter is how long a tool runs on a call before the holding
	// phrase; zero means DefaultToolHoldAfter, negative turns it off.
	HoldAfter time.Duration
	// HoldPrompt is the instruction of the holding phrase.
	HoldPrompt string
	// MaxCallsPerTurn bounds the tool calls between two turns of the
	// caller or user; zero means DefaultMaxToolCallsPerTurn.
	MaxCallsPerTurn int
	// Ran, when set, is told of every tool run: its name, outcome ("ok",
	// "error", "refused", "timeout", or "unknown" for a tool that does not
	// exist, named "unknown" then) and duration. It must be fast and
	// safe for concurrent use.
	Ran func(name, outcome string, d time.Duration)
}

// DefaultHoldPrompt is the instruction of the holding phrase.
const DefaultHoldPrompt = "In one short sentence, tell the caller you are checking and will be right back. Do not call any tool."

func (t Tools) holdAfter() time.Duration {
	if t.HoldAfter == 0 {
		return DefaultToolHoldAfter
	}
	return t.HoldAfter
}

func (t Tools) maxCalls() int {
	if t.MaxCallsPerTurn <= 0 {
		return DefaultMaxToolCallsPerTurn
	}
	return t.MaxCallsPerTurn
}

func (t Tools) holdPrompt() string {
	if t.HoldPrompt == "" {
		return DefaultHoldPrompt
	}
	return t.HoldPrompt
}

var noArgs = json.RawMessage(`{"type":"object","properties":{}}`)

// voiceSpecs are the tools a call's model is given: the built-in ones that
// can work, then the user's voice tools.
func (t Tools) voiceSpecs() []ports.ToolSpec {
	var specs []ports.ToolSpec
	if t.Control != nil {
		specs = append(specs, ports.ToolSpec{Name: ToolEndCall, Parameters: noArgs,
			Description: "End the phone call. Use it only once you have said goodbye and the caller has nothing more to ask."})
		if t.TransferTo != "" {
			specs = append(specs, ports.ToolSpec{Name: ToolTransfer,
				Description: "Transfer the caller to a person. First tell the caller you are transferring them.",
				Parameters:  json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string","description":"Why the caller needs a person, in a few words."}}}`)})
		}
	}
	if t.Sender != nil && t.TextFrom != "" {
		specs = append(specs, ports.ToolSpec{Name: ToolSendMessage,
			Description: "Send the caller a text message with something they want to keep, such as an address, a time or a link. Tell the caller you sent it.",
			Parameters:  json.RawMessage(`{"type":"object","properties":{"text":{"type":"string","description":"The message, short and complete."}},"required":["text"]}`)})
	}
	if t.Runner != nil {
		specs = append(specs, t.Runner.Tools(ports.ChannelVoice)...)
	}
	return specs
}

// run runs one of the user's tools and reports it: the result the model
// reads, never the error's internals beyond the runner's safe text.
func (t Tools) run(ctx context.Context, req ports.ToolRequest, log *slog.Logger) ports.ToolResult {
	start := time.Now()
	out, err := t.Runner.Run(ctx, req)
	res, outcome := toolResult(req.Call, out, err)
	t.report(log, req.Call, outcome, time.Since(start), err)
	return res
}

// toolResult is the result the model reads of a tool's output or error,
// and the run's outcome ("ok", "timeout", "refused", "error").
func toolResult(call ports.ToolCall, out string, err error) (ports.ToolResult, string) {
	switch {
	case err == nil:
		return ports.ToolResult{CallID: call.ID, Output: out}, "ok"
	case errors.Is(err, context.DeadlineExceeded):
		return ports.ToolResult{CallID: call.ID, Error: "the tool did not answer in time"}, "timeout"
	case errors.Is(err, ports.ErrNotFound):
		return ports.ToolResult{CallID: call.ID, Error: "there is no such tool here"}, "unknown"
	default:
		return ports.ToolResult{CallID: call.ID, Error: toolErrorText(err)}, "error"
	}
}

// report logs a tool run (its name and duration; the arguments only at
// debug) and tells the hook.
func (t Tools) report(log *slog.Logger, call ports.ToolCall, outcome string, took time.Duration, err error) {
	attrs := []any{"tool", call.Name, "outcome", outcome, "duration_ms", took.Milliseconds()}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	if outcome == "ok" {
		log.Info("tool ran", attrs...)
	} else {
		log.Warn("tool ran", attrs...)
	}
	log.Debug("tool arguments", "tool", call.Name, "arguments", string(call.Arguments))
	if t.Ran != nil {
		name := call.Name
		if outcome == "unknown" {
			name = "unknown" // a name the model made up: not a label of its own
		}
		t.Ran(name, outcome, took)
	}
}

// toolErrorText is what the model reads of a failed tool: the runner's
// text, which its contract keeps free of secrets and addresses, cut short.
func toolErrorText(err error) string {
	return clip(err.Error(), 200)
}

// chatChannel is the channel of a user's address.
func chatChannel(user string) ports.Channel {
	if len(user) >= len("whatsapp:") && user[:len("whatsapp:")] == "whatsapp:" {
		return ports.ChannelWhatsApp
	}
	return ports.ChannelSMS
}
