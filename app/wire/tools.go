package wire

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/convgateway/gateway/adapters/metrics"
	"github.com/convgateway/gateway/adapters/tools/httptool"
	"github.com/convgateway/gateway/adapters/twilio/calls"
	"github.com/convgateway/gateway/app"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
)

// newTools makes what the assistant may do besides talking, from the
// Config: the user's HTTP tools and MCP servers (TOOLS_FILE), call control
// through Twilio's REST API (with TWILIO_ACCOUNT_SID: end_call, and
// transfer_call with TRANSFER_NUMBER), texting the caller (TWILIO_FROM).
func newTools(cfg configs.Config, log *slog.Logger, p parts, m *metrics.Metrics) (app.Tools, error) {
	t := app.Tools{
		MCP:             mcpServers(cfg.Tools.MCP),
		TransferTo:      cfg.TransferNumber,
		TextFrom:        cfg.TwilioFrom,
		Sender:          p.sender,
		HoldAfter:       cfg.ToolHoldAfter,
		MaxCallsPerTurn: cfg.ToolMaxCallsPerTurn,
		Ran:             m.ToolRan,
		Control:         p.control,
	}
	if t.HoldAfter == 0 {
		t.HoldAfter = -1 // TOOL_HOLD_AFTER=0: no holding phrase
	}
	if t.Control == nil && cfg.TwilioAccountSID != "" {
		t.Control = calls.New(calls.Options{
			AccountSID: cfg.TwilioAccountSID, AuthToken: string(cfg.TwilioAuthToken),
			BaseURL: cfg.TwilioAPIBaseURL, HTTPClient: p.httpClient,
		})
	}
	if len(cfg.Tools.Tools) > 0 {
		runner, err := httptool.New(httptool.Options{
			Tools: httpTools(cfg.Tools.Tools), Secret: string(cfg.ToolsSigningSecret),
			HTTPClient: toolClient(p.httpClient), Logger: log.With("adapter", "httptool"),
		})
		if err != nil {
			return app.Tools{}, fmt.Errorf("wire: tools: %w", err)
		}
		t.Runner = runner
	}
	return t, nil
}

// toolClient is hc without following redirects: a tool answers itself.
func toolClient(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func httpTools(in []configs.HTTPTool) []httptool.Tool {
	out := make([]httptool.Tool, 0, len(in))
	for _, t := range in {
		chans := make([]ports.Channel, 0, len(t.Channels))
		for _, c := range t.Channels {
			chans = append(chans, ports.Channel(c))
		}
		out = append(out, httptool.Tool{
			Spec:     ports.ToolSpec{Name: t.Name, Description: t.Description, Parameters: t.Parameters},
			URL:      t.URL,
			Timeout:  t.Timeout,
			Channels: chans,
		})
	}
	return out
}

func mcpServers(in []configs.MCPServer) []ports.MCPServer {
	out := make([]ports.MCPServer, 0, len(in))
	for _, s := range in {
		headers := make(map[string]string, len(s.Headers))
		for k, v := range s.Headers {
			headers[k] = string(v)
		}
		out = append(out, ports.MCPServer{Label: s.Label, URL: s.URL, AllowedTools: s.AllowedTools,
			Headers: headers, RequireApproval: s.RequireApproval})
	}
	return out
}
