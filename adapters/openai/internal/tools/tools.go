package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/openai/openai-go/v3/packages/param"

	"github.com/convgateway/gateway/ports"
)

// Check reports a request whose tools cannot be used: tools without a
// RunTool, or two tools of one name. The error wraps ports.ErrRejected.
func Check(req ports.ChatRequest) error {
	if len(req.Tools) > 0 && req.RunTool == nil {
		return fmt.Errorf("%w: %d tools but no RunTool", ports.ErrRejected, len(req.Tools))
	}
	seen := make(map[string]bool, len(req.Tools))
	for _, t := range req.Tools {
		if t.Name == "" || seen[t.Name] {
			return fmt.Errorf("%w: tool name %q empty or repeated", ports.ErrRejected, t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}

// Function is a tool as the model's API declares it.
type Function struct {
	Name        string
	Description param.Opt[string] // omitted when the spec has none
	Parameters  map[string]any    // a JSON Schema object
}

// Functions checks req's tools (see Check) and returns them as functions.
// Errors wrap ports.ErrRejected.
func Functions(req ports.ChatRequest) ([]Function, error) {
	if err := Check(req); err != nil {
		return nil, err
	}
	fns := make([]Function, len(req.Tools))
	for i, spec := range req.Tools {
		schema, err := Parameters(spec)
		if err != nil {
			return nil, err
		}
		fns[i] = Function{Name: spec.Name, Parameters: schema}
		if spec.Description != "" {
			fns[i].Description = param.NewOpt(spec.Description)
		}
	}
	return fns, nil
}

// Rounds is the number of tool rounds req allows: MaxToolRounds, or
// ports.DefaultMaxToolRounds when it is not positive.
func Rounds(req ports.ChatRequest) int {
	if req.MaxToolRounds > 0 {
		return req.MaxToolRounds
	}
	return ports.DefaultMaxToolRounds
}

// Parameters returns the JSON Schema of spec's arguments as an object (an
// object schema without properties when spec has none). The error wraps
// ports.ErrRejected when the schema is not a JSON object.
func Parameters(spec ports.ToolSpec) (map[string]any, error) {
	if len(spec.Parameters) == 0 {
		return map[string]any{"type": "object", "properties": map[string]any{}}, nil
	}
	var schema map[string]any
	if err := json.Unmarshal(spec.Parameters, &schema); err != nil || schema == nil {
		return nil, fmt.Errorf("%w: tool %q: parameters are not a JSON object", ports.ErrRejected, spec.Name)
	}
	return schema, nil
}

// Output is the text the model reads for r: its Output, or for a failed
// call the JSON object {"error": r.Error}.
func Output(r ports.ToolResult) string {
	if r.Error == "" {
		return r.Output
	}
	b, _ := json.Marshal(map[string]string{"error": r.Error}) // a string map always encodes
	return string(b)
}

// badArguments is the result of a call whose arguments are not JSON.
const badArguments = "the arguments are not valid JSON; nothing was run"

// Run runs calls with run, all at once, and returns their results in the
// order of calls, each naming its call (whatever run put in CallID). A call
// whose arguments are not a JSON value is not run: its result is an error
// the model can read; empty arguments are read as {}. Run returns when
// every run has returned: run must honour ctx.
func Run(ctx context.Context, run func(context.Context, ports.ToolCall) ports.ToolResult, calls []ports.ToolCall) []ports.ToolResult {
	results := make([]ports.ToolResult, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		if len(call.Arguments) == 0 {
			call.Arguments = json.RawMessage("{}")
		}
		if !json.Valid(call.Arguments) {
			results[i] = ports.ToolResult{CallID: call.ID, Error: badArguments}
			continue
		}
		wg.Go(func() {
			results[i] = run(ctx, call)
			results[i].CallID = call.ID
		})
	}
	wg.Wait()
	return results
}

// Names lists the names of calls, for logs (never their arguments).
func Names(calls []ports.ToolCall) []string {
	names := make([]string, len(calls))
	for i, c := range calls {
		names[i] = c.Name
	}
	return names
}
