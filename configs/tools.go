package configs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The channels a tool may be offered on (the channels list of a tool in
// TOOLS_FILE).
const (
	ChannelVoice    = "voice"
	ChannelWhatsApp = "whatsapp"
	ChannelSMS      = "sms"
)

// AllChannels are a tool's channels when the tools file names none.
var AllChannels = []string{ChannelVoice, ChannelWhatsApp, ChannelSMS}

// The require_approval modes of an MCP server.
const (
	ApprovalNever  = "never" // the default: the model calls the server's tools by itself
	ApprovalAlways = "always"
)

// DefaultHTTPToolTimeout is an HTTP tool's timeout when the tools file
// gives none (the same as ports.DefaultToolTimeout); MaxHTTPToolTimeout is
// the longest it may be: a caller waits for the tool.
const (
	DefaultHTTPToolTimeout = 5 * time.Second
	MaxHTTPToolTimeout     = time.Minute
)

// ReservedToolNames are the gateway's built-in tools, which a tools file
// may not redefine.
var ReservedToolNames = []string{"end_call", "transfer_call", "send_message"}

// ToolsFile is the content of TOOLS_FILE: the user's HTTP tools, which the
// gateway runs by POSTing to them, and the MCP servers the model's provider
// calls by itself. Load reads it; its zero value is "no tools".
type ToolsFile struct {
	Tools []HTTPTool
	MCP   []MCPServer
}

// HTTPTool is one tool the gateway runs over HTTP.
type HTTPTool struct {
	// Name is what the model calls it: ^[a-zA-Z0-9_-]{1,64}$, unique, not
	// one of ReservedToolNames.
	Name string
	// Description tells the model what the tool does and when to use it.
	Description string
	// Parameters is the JSON Schema of the arguments (an object schema),
	// passed to the model as is; nil means the tool takes no arguments.
	Parameters json.RawMessage
	// URL receives the signed POST: https, or http for a loopback host.
	URL string
	// Timeout bounds one run (DefaultHTTPToolTimeout when the file gives
	// none, at most MaxHTTPToolTimeout).
	Timeout time.Duration
	// Channels the tool is offered on: some of AllChannels (all of them
	// when the file gives none).
	Channels []string
}

// MCPServer is a remote MCP server handed to the model's provider as a
// hosted MCP tool.
type MCPServer struct {
	// Label names the server to the model (the same rule as a tool's name).
	Label string
	// URL of the server: https, or http for a loopback host.
	URL string
	// AllowedTools limits the server's tools the model may use; empty
	// allows all of them.
	AllowedTools []string
	// RequireApproval is ApprovalNever (the default) or ApprovalAlways.
	RequireApproval string
	// Headers are sent to the server, ${VAR} expanded from the environment
	// or .env; they often hold credentials and are never printed.
	Headers map[string]Secret
}

// LogValue implements slog.LogValuer: the tools' names and the servers'
// labels, nothing else (URLs may carry tokens, headers credentials).
func (f ToolsFile) LogValue() slog.Value {
	tools := make([]string, len(f.Tools))
	for i, t := range f.Tools {
		tools[i] = t.Name
	}
	mcp := make([]string, len(f.MCP))
	for i, s := range f.MCP {
		mcp[i] = s.Label
	}
	return slog.GroupValue(slog.Any("tools", tools), slog.Any("mcp", mcp))
}

// The keys each part of a tools file may have, in the order of the
// documentation.
var (
	toolsFileKeys = []string{"tools", "mcp"}
	httpToolKeys  = []string{"name", "description", "parameters", "url", "timeout", "channels"}
	mcpServerKeys = []string{"label", "url", "allowed_tools", "require_approval", "headers"}
)

// readToolsFile reads the tools file at path (relative to dir unless
// absolute), expanding ${VAR} in MCP headers with lookup. It returns what
// it could read and a problem for each thing it could not: a missing file,
// bad YAML, unknown keys, values of the wrong type, unset variables. The
// rules on the values themselves are ToolsFile.problems'.
func readToolsFile(path, dir string, lookup func(string) (string, bool)) (ToolsFile, []problem) {
	full := path
	if !filepath.IsAbs(full) && dir != "" {
		full = filepath.Join(dir, path)
	}
	r := toolsReader{file: path, lookup: lookup}
	data, err := os.ReadFile(full)
	if err != nil {
		r.fail(nil, "", "cannot be read: %v", unwrapPathError(err))
		return ToolsFile{}, r.problems
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		r.fail(nil, "", "is not valid YAML: %v", err)
		return ToolsFile{}, r.problems
	}
	var f ToolsFile
	if len(doc.Content) == 0 {
		r.fail(nil, "", "is empty: it must list tools or mcp servers")
		return f, r.problems
	}
	root := doc.Content[0]
	r.mapping(root, "", toolsFileKeys, func(k string, v *yaml.Node) {
		switch k {
		case "tools":
			r.sequence(v, "tools", func(i int, n *yaml.Node) { f.Tools = append(f.Tools, r.tool(i, n)) })
		case "mcp":
			r.sequence(v, "mcp", func(i int, n *yaml.Node) { f.MCP = append(f.MCP, r.server(i, n)) })
		}
	})
	if len(r.problems) == 0 && len(f.Tools) == 0 && len(f.MCP) == 0 {
		r.fail(root, "", "lists no tools and no mcp servers")
	}
	return f, r.problems
}

// unwrapPathError drops the path from an *os.PathError, which the problem
// names already.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// toolsReader walks a tools file's YAML nodes, collecting problems.
type toolsReader struct {
	file     string
	lookup   func(string) (string, bool)
	problems []problem
}

// fail records a problem at node n (nil: the file as a whole) of the item
// where ("tools[0] (check_availability).timeout"; "" for the file).
func (r *toolsReader) fail(n *yaml.Node, where, format string, args ...any) {
	text := fmt.Sprintf("%s %s", keyToolsFile, r.file)
	if n != nil {
		text += fmt.Sprintf(" line %d", n.Line)
	}
	text += ":"
	if where != "" {
		text += " " + where
	}
	text += " " + fmt.Sprintf(format, args...)
	r.problems = append(r.problems, problem{key: toolsKey(where), text: text})
}

// toolsKey is the problem key of a part of the tools file, shared by the
// reader and ToolsFile.problems so that a value that did not read is not
// reported twice.
func toolsKey(where string) string { return keyToolsFile + " " + where }

// mapping calls each with the key and value of each entry of the mapping
// n, reporting keys not in known.
func (r *toolsReader) mapping(n *yaml.Node, where string, known []string, each func(k string, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		r.fail(n, where, "must be a mapping of %s", strings.Join(known, ", "))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			r.fail(k, where, "has the unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		each(k.Value, v)
	}
}

// sequence calls each with each item of the sequence n.
func (r *toolsReader) sequence(n *yaml.Node, where string, each func(i int, item *yaml.Node)) {
	if n.Kind != yaml.SequenceNode {
		r.fail(n, where, "must be a list")
		return
	}
	for i, item := range n.Content {
		each(i, item)
	}
}

// itemName is how a problem names item i of a list whose mapping is n:
// see itemWhere.
func itemName(list string, i int, n *yaml.Node, nameKey string) string {
	var name string
	for j := 0; n.Kind == yaml.MappingNode && j+1 < len(n.Content); j += 2 {
		if k, v := n.Content[j], n.Content[j+1]; k.Value == nameKey && v.Kind == yaml.ScalarNode {
			name = strings.TrimSpace(v.Value)
		}
	}
	return itemWhere(list, i, name)
}

// itemWhere is how a problem names item i of a list: "tools[0]
// (check_availability)", or "tools[0]" when it has no name.
func itemWhere(list string, i int, name string) string {
	where := fmt.Sprintf("%s[%d]", list, i)
	if name != "" {
		where += " (" + name + ")"
	}
	return where
}

func (r *toolsReader) tool(i int, n *yaml.Node) HTTPTool {
	where := itemName("tools", i, n, "name")
	t := HTTPTool{Timeout: DefaultHTTPToolTimeout, Channels: slices.Clone(AllChannels)}
	r.mapping(n, where, httpToolKeys, func(k string, v *yaml.Node) {
		at := where + "." + k
		switch k {
		case "name":
			r.scalar(v, at, &t.Name)
		case "description":
			r.scalar(v, at, &t.Description)
		case "parameters":
			t.Parameters = r.schema(v, at)
		case "url":
			r.scalar(v, at, &t.URL)
		case "timeout":
			var s string
			if r.scalar(v, at, &s) {
				d, err := time.ParseDuration(s)
				if err != nil {
					t.Timeout = 0
					r.fail(v, at, `must be a duration with a unit, such as "5s" (got %q)`, s)
					break
				}
				t.Timeout = d
			}
		case "channels":
			t.Channels = nil
			r.list(v, at, &t.Channels)
		}
	})
	return t
}

func (r *toolsReader) server(i int, n *yaml.Node) MCPServer {
	where := itemName("mcp", i, n, "label")
	s := MCPServer{RequireApproval: ApprovalNever}
	r.mapping(n, where, mcpServerKeys, func(k string, v *yaml.Node) {
		at := where + "." + k
		switch k {
		case "label":
			r.scalar(v, at, &s.Label)
		case "url":
			r.scalar(v, at, &s.URL)
		case "allowed_tools":
			r.list(v, at, &s.AllowedTools)
		case "require_approval":
			r.scalar(v, at, &s.RequireApproval)
		case "headers":
			s.Headers = r.headers(v, at)
		}
	})
	return s
}

// scalar decodes a single value into dst and reports whether it could.
func (r *toolsReader) scalar(n *yaml.Node, where string, dst *string) bool {
	if n.Kind != yaml.ScalarNode {
		r.fail(n, where, "must be a single value")
		return false
	}
	*dst = strings.TrimSpace(n.Value)
	return true
}

// list decodes a list of single values (or one value) into dst.
func (r *toolsReader) list(n *yaml.Node, where string, dst *[]string) {
	if n.Kind == yaml.ScalarNode {
		*dst = []string{strings.TrimSpace(n.Value)}
		return
	}
	r.sequence(n, where, func(_ int, item *yaml.Node) {
		var s string
		if r.scalar(item, where, &s) {
			*dst = append(*dst, s)
		}
	})
}

// schema turns the YAML of a JSON Schema into JSON.
func (r *toolsReader) schema(n *yaml.Node, where string) json.RawMessage {
	var v any
	if err := n.Decode(&v); err != nil {
		r.fail(n, where, "cannot be read: %v", err)
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		r.fail(n, where, "is not JSON (a JSON Schema has string keys and JSON values): %v", err)
		return nil
	}
	return json.RawMessage(bytes.TrimSpace(buf.Bytes()))
}

// envRef is a ${VAR} reference in a header value.
var envRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// envName is what a variable's name may be.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// headers decodes a mapping of header names to values, expanding ${VAR}
// references. Problems name the header and the variable, never a value.
func (r *toolsReader) headers(n *yaml.Node, where string) map[string]Secret {
	if n.Kind != yaml.MappingNode {
		r.fail(n, where, "must be a mapping of header names to values")
		return nil
	}
	out := make(map[string]Secret, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		at := where + "." + k.Value
		if v.Kind != yaml.ScalarNode {
			r.fail(v, at, "must be a single value")
			continue
		}
		val := envRef.ReplaceAllStringFunc(v.Value, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			if !envName.MatchString(name) {
				r.fail(v, at, "refers to ${%s}, which is not a variable name", name)
				return ""
			}
			x, ok := r.lookup(name)
			if !ok {
				r.fail(v, at, "refers to ${%s}, which is set neither in the environment nor in .env", name)
			}
			return x
		})
		out[k.Value] = Secret(val)
	}
	return out
}
