package responses

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/conversations"
	"github.com/openai/openai-go/v3/responses"

	"github.com/convgateway/gateway/adapters/openai/internal/rest"
	"github.com/convgateway/gateway/adapters/openai/internal/tools"
	"github.com/convgateway/gateway/ports"
)

// answerTimeout bounds adding the outputs of abandoned calls.
const answerTimeout = 5 * time.Second

// abandoned is the output of a call the gateway gave up on before running
// it.
const abandoned = "the gateway stopped before running this tool"

// params returns the parameters of req's responses, but their input: the
// model, the instructions, the conversation and the tools.
func (a *Assistant) params(req ports.ChatRequest) (responses.ResponseNewParams, error) {
	params := responses.ResponseNewParams{
		Model:        a.model,
		Conversation: responses.ResponseNewParamsConversationUnion{OfString: openai.String(req.ThreadID)},
	}
	if a.instructions != "" {
		params.Instructions = openai.String(a.instructions)
	}
	fns, err := tools.Functions(req)
	if err != nil {
		return params, err
	}
	for _, f := range fns {
		params.Tools = append(params.Tools, responses.ToolUnionParam{OfFunction: &responses.FunctionToolParam{
			Name: f.Name, Description: f.Description, Parameters: f.Parameters, Strict: openai.Bool(false),
		}})
	}
	for _, s := range req.MCP {
		params.Tools = append(params.Tools, responses.ToolUnionParam{OfMcp: mcpTool(s)})
	}
	return params, nil
}

// mcpTool declares an MCP server as a hosted MCP tool.
func mcpTool(s ports.MCPServer) *responses.ToolMcpParam {
	approval := s.RequireApproval
	if approval == "" {
		approval = "never"
	}
	m := &responses.ToolMcpParam{
		ServerLabel:     s.Label,
		ServerURL:       openai.String(s.URL),
		Headers:         s.Headers,
		RequireApproval: responses.ToolMcpRequireApprovalUnionParam{OfMcpToolApprovalSetting: openai.String(approval)},
	}
	if len(s.AllowedTools) > 0 {
		m.AllowedTools = responses.ToolMcpAllowedToolsUnionParam{OfMcpAllowedTools: s.AllowedTools}
	}
	return m
}

// functionCalls returns the function calls in a response's output.
func functionCalls(resp *responses.Response) []ports.ToolCall {
	var calls []ports.ToolCall
	for _, item := range resp.Output {
		if item.Type != "function_call" {
			continue
		}
		fc := item.AsFunctionCall()
		calls = append(calls, ports.ToolCall{ID: fc.CallID, Name: fc.Name, Arguments: json.RawMessage(fc.Arguments)})
	}
	return calls
}

// unanswered is what the model reads for calls the gateway gives up on.
func unanswered(calls []ports.ToolCall) []ports.ToolResult {
	results := make([]ports.ToolResult, len(calls))
	for i, c := range calls {
		results[i] = ports.ToolResult{CallID: c.ID, Error: abandoned}
	}
	return results
}

// outputItems turns results into function_call_output items.
func outputItems(results []ports.ToolResult) responses.ResponseInputParam {
	items := make(responses.ResponseInputParam, len(results))
	for i, r := range results {
		item := responses.ResponseInputItemParamOfFunctionCallOutput(tools.Output(r))
		item.OfFunctionCallOutput.CallID = openai.String(r.CallID)
		items[i] = item
	}
	return items
}

// answerCalls adds outputs for calls the conversation waits for, which
// would otherwise make it refuse the next message. Best effort, even when
// ctx is done; a failure is logged.
func (a *Assistant) answerCalls(ctx context.Context, threadID string, results []ports.ToolResult) {
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), answerTimeout)
	defer stop()
	_, err := a.client.Conversations.Items.New(ctx, threadID, conversations.ItemNewParams{Items: outputItems(results)})
	if err != nil {
		a.log.Warn("responses: answer abandoned tool calls", "conversation", threadID, "calls", len(results),
			"err", fmt.Errorf("add conversation items: %w", rest.Err(ctx, err)))
	}
}
