//lint:file-ignore SA1019 this package is the Assistants v2 adapter by design

package assistants

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/convgateway/gateway/adapters/openai/internal/rest"
	"github.com/convgateway/gateway/adapters/openai/internal/tools"
	"github.com/convgateway/gateway/ports"
)

// runParams returns the parameters of req's run: the assistant, and
// req.Tools as function tools (none: the assistant's own tools). MCP
// servers are refused.
func (a *Assistant) runParams(req ports.ChatRequest) (openai.BetaThreadRunNewParams, error) {
	params := openai.BetaThreadRunNewParams{AssistantID: a.assistantID}
	if len(req.MCP) > 0 {
		labels := make([]string, len(req.MCP))
		for i, s := range req.MCP {
			labels[i] = s.Label
		}
		return params, fmt.Errorf("%w: the Assistants API cannot use MCP servers (%s); use the Responses backend",
			ports.ErrRejected, strings.Join(labels, ", "))
	}
	fns, err := tools.Functions(req)
	if err != nil {
		return params, err
	}
	for _, f := range fns {
		params.Tools = append(params.Tools, openai.AssistantToolParamOfFunction(shared.FunctionDefinitionParam{
			Name: f.Name, Description: f.Description, Parameters: f.Parameters, Strict: openai.Bool(false),
		}))
	}
	return params, nil
}

// runTools runs the tool calls run requires, all at once, and submits
// their outputs. It returns the run as the submission left it, or as it
// was on error.
func (a *Assistant) runTools(ctx context.Context, req ports.ChatRequest, run *openai.Run) (*openai.Run, error) {
	required := run.RequiredAction.SubmitToolOutputs.ToolCalls
	calls := make([]ports.ToolCall, len(required))
	for i, c := range required {
		calls[i] = ports.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: json.RawMessage(c.Function.Arguments)}
	}
	a.log.Debug("assistants: tool calls", "thread", req.ThreadID, "run", run.ID, "tools", tools.Names(calls))
	results := tools.Run(ctx, req.RunTool, calls)
	if err := ctx.Err(); err != nil {
		return run, fmt.Errorf("assistants: run tools of run %s: %w", run.ID, err)
	}
	outputs := make([]openai.BetaThreadRunSubmitToolOutputsParamsToolOutput, len(results))
	for i, r := range results {
		outputs[i] = openai.BetaThreadRunSubmitToolOutputsParamsToolOutput{
			ToolCallID: openai.String(r.CallID),
			Output:     openai.String(tools.Output(r)),
		}
	}
	next, err := a.threads.Runs.SubmitToolOutputs(ctx, req.ThreadID, run.ID,
		openai.BetaThreadRunSubmitToolOutputsParams{ToolOutputs: outputs})
	if err != nil {
		return run, fmt.Errorf("assistants: submit tool outputs of run %s: %w", run.ID, rest.Err(ctx, err))
	}
	return next, nil
}
