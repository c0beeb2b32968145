package configs

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withTools is the required settings plus a signing secret.
var withTools = required.with("TOOLS_SIGNING_SECRET", "0123456789abcdef0123")

func TestToolsFileExample(t *testing.T) {
	path, err := filepath.Abs("tools.example.yaml")
	require.NoError(t, err)
	cfg, err := Load(LoadOptions{Dir: t.TempDir(), Getenv: withTools.with("TOOLS_FILE", path, "CALENDAR_TOKEN", "cal-token").get})
	require.NoError(t, err)

	want := ToolsFile{
		Tools: []HTTPTool{{
			Name:        "check_availability",
			Description: "Free tables for a date and party size.",
			Parameters: []byte(`{"properties":{"date":{"description":"The day, as YYYY-MM-DD","type":"string"},` +
				`"people":{"minimum":1,"type":"integer"}},"required":["date","people"],"type":"object"}`),
			URL:      "https://tools.example.com/availability",
			Timeout:  5 * time.Second,
			Channels: []string{"voice", "whatsapp", "sms"},
		}},
		MCP: []MCPServer{{
			Label: "calendar", URL: "https://mcp.example.com/mcp", AllowedTools: []string{"list_events"},
			RequireApproval: ApprovalNever, Headers: map[string]Secret{"Authorization": "Bearer cal-token"},
		}},
	}
	assert.Equal(t, want, cfg.Tools)
}

func TestToolsFileDefaultsAndEnvExpansion(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, ".env", "FROM_DOTENV=dotenv-value\nBOTH=dotenv-loses\nEMPTY_IN_ENV=dotenv-fallback\n")
	// A relative TOOLS_FILE is found in the working directory.
	write(t, dir, "tools.yaml", `
tools:
  - name: lookup
    description: Look up an order.
    parameters:
      type: object
      properties: {orderId: {type: string}}
    url: http://localhost:8080/lookup
    channels: sms
  - name: ping
    description: Ping.
    url: https://tools.example.com/ping
    timeout: 250ms
mcp:
  - label: docs
    url: https://mcp.example.com/mcp
    require_approval: always
    headers:
      Authorization: Bearer ${FROM_DOTENV}
      X-Both: ${BOTH}-${FROM_ENV}
      X-Fallback: ${EMPTY_IN_ENV}
      X-Literal: $NOT_EXPANDED
`)
	e := withTools.with("TOOLS_FILE", "tools.yaml", "FROM_ENV", "env-value", "BOTH", "env-wins", "EMPTY_IN_ENV", "")
	cfg, err := Load(LoadOptions{Dir: dir, Getenv: e.get})
	require.NoError(t, err)

	require.Len(t, cfg.Tools.Tools, 2)
	lookup, ping := cfg.Tools.Tools[0], cfg.Tools.Tools[1]
	assert.JSONEq(t, `{"type":"object","properties":{"orderId":{"type":"string"}}}`, string(lookup.Parameters),
		"the schema keeps its keys' case")
	assert.Equal(t, []string{"sms"}, lookup.Channels, "one channel may be written without a list")
	assert.Equal(t, DefaultHTTPToolTimeout, lookup.Timeout)
	assert.Nil(t, ping.Parameters, "no parameters: no arguments")
	assert.Equal(t, 250*time.Millisecond, ping.Timeout)
	assert.Equal(t, AllChannels, ping.Channels)

	require.Len(t, cfg.Tools.MCP, 1)
	s := cfg.Tools.MCP[0]
	assert.Equal(t, ApprovalAlways, s.RequireApproval)
	assert.Empty(t, s.AllowedTools)
	assert.Equal(t, map[string]Secret{
		"Authorization": "Bearer dotenv-value",
		"X-Both":        "env-wins-env-value",
		"X-Fallback":    "dotenv-fallback",
		"X-Literal":     "$NOT_EXPANDED",
	}, s.Headers)
}

func TestToolsFileNamesEveryProblemAtOnce(t *testing.T) {
	const headerValue = "literal-header-t0k3n"
	path := write(t, t.TempDir(), "tools.yaml", `
tool: {}
tools:
  - name: check availability
    description: Bad name, a typo and a schema that is not an object's.
    parameters: {type: string}
    url: https://tools.example.com/a
    timout: 5s
  - name: end_call
    description: A built-in tool's name.
    url: https://tools.example.com/b
  - name: lookup
    description: The first lookup.
    url: http://tools.example.com/c?token=qu3ry
    channels: [voice, fax]
  - name: lookup
    description: The second lookup.
    parameters: {type: object, properties: {a: {type: strin}}}
    url: ftp://tools.example.com/d
    timeout: "5"
  - name: nothing
    parameters: {type: object, properties: {1: {type: string}}}
mcp:
  - label: calendar
    url: https://mcp.example.com/mcp
    allowed_tool: [x]
    require_approval: sometimes
    headers: {Authorization: "Bearer ${MISSING_TOKEN}", X-Other: "`+headerValue+`"}
`)
	_, err := Load(LoadOptions{Dir: t.TempDir(), Getenv: required.with("TOOLS_FILE", path).get})
	require.Error(t, err)
	msg := err.Error()
	want := []string{
		`line 2: has the unknown key "tool" (known: tools, mcp)`,
		`tools[0] (check availability).name must be 1 to 64 letters, digits, _ or -`,
		`tools[0] (check availability).parameters must have type: object`,
		`line 8: tools[0] (check availability) has the unknown key "timout"`,
		`tools[1] (end_call).name is the name of a built-in tool`,
		`tools[2] (lookup).url must use https; http is allowed for a loopback host only (got http for "tools.example.com")`,
		`tools[2] (lookup).channels has the unknown channel "fax" (use voice, whatsapp, sms)`,
		`tools[3] (lookup).name repeats the name of tools[2] (lookup)`,
		`tools[3] (lookup).parameters is not a valid JSON Schema: at /properties/a/type: value must be one of`,
		`tools[3] (lookup).url must be an https URL (got the scheme "ftp")`,
		`tools[3] (lookup).timeout must be a duration with a unit, such as "5s" (got "5")`,
		`tools[4] (nothing).description is required`,
		`tools[4] (nothing).parameters is not JSON`,
		`tools[4] (nothing).url is required`,
		`mcp[0] (calendar) has the unknown key "allowed_tool"`,
		`mcp[0] (calendar).require_approval must be never or always (got "sometimes")`,
		`mcp[0] (calendar).headers.Authorization refers to ${MISSING_TOKEN}, which is set neither in the environment nor in .env`,
		`TOOLS_SIGNING_SECRET is required: TOOLS_FILE has HTTP tools`,
	}
	assertProblems(t, err, want)
	assert.Contains(t, msg, "TOOLS_FILE "+path+" line 2:", "a problem names the file and the line")
	for _, secret := range []string{headerValue, "qu3ry", "Bearer"} {
		assert.NotContains(t, msg, secret, "header values and URLs are never quoted")
	}
}

func TestToolsFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, content, want string }{
		{"missing", "", "cannot be read"},
		{"not yaml", "tools: [\n", "is not valid YAML"},
		{"empty", "# nothing\n", "is empty"},
		{"no tools", "tools: []\nmcp: []\n", "lists no tools and no mcp servers"},
		{"schema reference", "tools:\n  - {name: x, description: d, url: \"https://t.example.com\", parameters: {type: object, properties: {a: {$ref: \"file:///etc/passwd\"}}}}\n",
			"parameters is not a valid JSON Schema"},
		{"not a mapping", "- name: x\n", "must be a mapping of tools, mcp"},
		{"tools not a list", "tools: {name: x}\n", "tools must be a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".yaml")
			if tt.content != "" {
				write(t, dir, tt.name+".yaml", tt.content)
			}
			_, err := Load(LoadOptions{Dir: t.TempDir(), Getenv: withTools.with("TOOLS_FILE", path).get})
			require.Error(t, err)
			var p *Problems
			require.True(t, errors.As(err, &p))
			assert.Len(t, p.List, 1, err.Error())
			assert.Contains(t, err.Error(), "TOOLS_FILE "+path)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestToolsFileIsNotReadToSend(t *testing.T) {
	e := env{"TWILIO_AUTH_TOKEN": "tok", "TWILIO_ACCOUNT_SID": "AC1", "TOOLS_FILE": filepath.Join(t.TempDir(), "missing.yaml")}
	_, err := Load(LoadOptions{Dir: t.TempDir(), Purpose: PurposeSend, Getenv: e.get})
	assert.NoError(t, err, "gateway send does not need the tools")
}

// validTool is an HTTP tool Validate accepts.
var validTool = HTTPTool{Name: "t", Description: "d", URL: "https://x.example.com", Timeout: time.Second, Channels: AllChannels}

func TestToolSettingsDefaults(t *testing.T) {
	c := Defaults()
	assert.Equal(t, 1500*time.Millisecond, c.ToolHoldAfter)
	assert.Equal(t, 3, c.ToolMaxCallsPerTurn)
	assert.Empty(t, c.ToolsFile)
	assert.Equal(t, ToolsFile{}, c.Tools)
	assert.Empty(t, c.TransferNumber)
}

func TestToolSecretsNeverPrinted(t *testing.T) {
	const (
		signing = "SECRET-signing-secret-0123456789"
		token   = "SECRET-calendar-token"
		query   = "SECRET-query-token"
	)
	path := write(t, t.TempDir(), "tools.yaml", `
tools:
  - {name: ping, description: Ping., url: "https://tools.example.com/ping?key=`+query+`"}
mcp:
  - {label: calendar, url: "https://mcp.example.com/mcp", headers: {Authorization: "Bearer ${CAL}"}}
`)
	cfg, err := Load(LoadOptions{Dir: t.TempDir(), Getenv: required.with("TOOLS_FILE", path, "TOOLS_SIGNING_SECRET", signing, "CAL", token).get})
	require.NoError(t, err)

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", cfg, "tools", cfg.Tools)
	printed := fmt.Sprintf("%v %+v %#v %v %+v", cfg, cfg, cfg, cfg.Tools.MCP, cfg.Tools.MCP)
	for _, s := range []string{signing, token, query} {
		assert.NotContains(t, logged.String(), s)
	}
	for _, s := range []string{signing, token} {
		assert.NotContains(t, printed, s)
	}
	assert.Contains(t, logged.String(), `"tools":["ping"]`, "the tools' names are logged")
	assert.Contains(t, logged.String(), `"mcp":["calendar"]`)
}
