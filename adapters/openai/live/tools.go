package live

import (
	"encoding/json"
	"errors"
	"fmt"

	oai "github.com/openai/openai-go/v3/live"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/responses"

	"github.com/convgateway/gateway/ports"
)

// errMCP is why Open refuses MCP servers: the SDK's mcp tool of the
// delegation's Responses configuration (ResponsesDelegationConfigToolMcpParam)
// carries nothing but its type, and the session configuration is strict, so
// there is no way to name a server.
var errMCP = errors.New("GPT-Live cannot use MCP servers: its Responses delegation takes no MCP server " +
	"configuration (no server_label, server_url, allowed_tools, require_approval or headers); " +
	"remove the mcp section or use the Realtime speech backend")

// noArguments is the schema of a tool declared without one.
var noArguments = map[string]any{"type": "object", "properties": map[string]any{}}

// delegationTools turns the call's tools into function tools of the
// delegation's Responses configuration. A schema is passed as written:
// its members go as raw JSON (the SDK would write a json.Number as a
// string); one that is not a JSON object is an error.
func delegationTools(specs []ports.ToolSpec) ([]oai.ResponsesDelegationConfigToolUnionParam, error) {
	var tools []oai.ResponsesDelegationConfigToolUnionParam
	for _, spec := range specs {
		f := &oai.FunctionToolParam{Name: spec.Name, Parameters: noArguments}
		if spec.Description != "" {
			f.Description = param.NewOpt(spec.Description)
		}
		if len(spec.Parameters) > 0 {
			var members map[string]json.RawMessage
			if err := json.Unmarshal(spec.Parameters, &members); err != nil || members == nil {
				return nil, fmt.Errorf("tool %q: its parameters are not a JSON object", spec.Name)
			}
			schema := make(map[string]any, len(members))
			for k, v := range members {
				schema[k] = v // marshalled as written
			}
			f.Parameters = schema
		}
		tools = append(tools, oai.ResponsesDelegationConfigToolUnionParam{OfFunction: f})
	}
	return tools, nil
}

// toolOutput is the response.item.create that gives the Responses backend
// a tool's result: a function_call_output item naming the call. A failed
// tool's output is {"error": text}.
func toolOutput(r ports.ToolResult) oai.ClientEventUnionParam {
	out := r.Output
	if r.Error != "" {
		b, _ := json.Marshal(map[string]string{"error": r.Error}) // a map of strings always marshals
		out = string(b)
	}
	return oai.ClientEventParamOfResponseItemCreate(responses.ResponseInputItemFunctionCallOutputParam{
		CallID: param.NewOpt(r.CallID),
		Output: responses.ResponseInputItemFunctionCallOutputOutputUnionParam{OfString: param.NewOpt(out)},
	})
}

// responseCreate is the response.create that lets the Responses backend
// go on with the tool results it was given.
func responseCreate() oai.ClientEventUnionParam {
	return oai.ClientEventUnionParam{OfResponseCreate: &oai.ResponseCreateEventParam{}}
}
