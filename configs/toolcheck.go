package configs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// toolName is what a tool's name, and an MCP server's label, may be (the
// rule of OpenAI's function names).
var toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// headerName is an HTTP header name (RFC 9110's token).
var headerName = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// problems lists what is wrong with the values of f, read from file; a
// problem names the file, the item and the key, never a header's value.
func (f ToolsFile) problems(file string) []problem {
	var list []problem
	add := func(where, format string, args ...any) {
		list = append(list, problem{
			key:  toolsKey(where),
			text: fmt.Sprintf("%s %s: %s ", keyToolsFile, file, where) + fmt.Sprintf(format, args...),
		})
	}
	names := map[string]string{} // a tool's name -> where it was first seen
	for i, t := range f.Tools {
		where := itemWhere("tools", i, t.Name)
		checkName(add, where+".name", t.Name, names)
		if slices.Contains(ReservedToolNames, t.Name) {
			add(where+".name", "is the name of a built-in tool (%s): choose another", strings.Join(ReservedToolNames, ", "))
		}
		if strings.TrimSpace(t.Description) == "" {
			add(where+".description", "is required: the model reads it to know when to call the tool")
		}
		if msg := checkSchema(t.Parameters); msg != "" {
			add(where+".parameters", "%s", msg)
		}
		if msg := checkToolURL(t.URL); msg != "" {
			add(where+".url", "%s", msg)
		}
		if t.Timeout <= 0 || t.Timeout > MaxHTTPToolTimeout {
			add(where+".timeout", "must be positive and at most %s (got %s)", MaxHTTPToolTimeout, t.Timeout)
		}
		if len(t.Channels) == 0 {
			add(where+".channels", "must name at least one of %s (or be left out for all)", strings.Join(AllChannels, ", "))
		}
		for _, ch := range t.Channels {
			if !slices.Contains(AllChannels, ch) {
				add(where+".channels", "has the unknown channel %q (use %s)", ch, strings.Join(AllChannels, ", "))
			}
		}
	}

	labels := map[string]string{}
	for i, s := range f.MCP {
		where := itemWhere("mcp", i, s.Label)
		checkName(add, where+".label", s.Label, labels)
		if msg := checkToolURL(s.URL); msg != "" {
			add(where+".url", "%s", msg)
		}
		for _, name := range s.AllowedTools {
			if !toolName.MatchString(name) {
				add(where+".allowed_tools", "has %q, which is not a tool name (1 to 64 letters, digits, _ or -)", name)
			}
		}
		if s.RequireApproval != ApprovalNever && s.RequireApproval != ApprovalAlways {
			add(where+".require_approval", "must be %s or %s (got %q)", ApprovalNever, ApprovalAlways, s.RequireApproval)
		}
		for _, name := range sortedKeys(s.Headers) {
			if !headerName.MatchString(name) {
				add(where+".headers", "has %q, which is not a header name", name)
			}
			if strings.ContainsAny(string(s.Headers[name]), "\r\n") {
				add(where+".headers."+name, "must be on one line")
			}
		}
	}
	return list
}

// checkName checks a tool's name or an MCP server's label at where, and
// that seen (name -> where first seen) does not have it yet.
func checkName(add func(where, format string, args ...any), where, name string, seen map[string]string) {
	switch {
	case name == "":
		add(where, "is required")
		return
	case !toolName.MatchString(name):
		add(where, "must be 1 to 64 letters, digits, _ or - (got %q)", name)
	}
	if first, ok := seen[name]; ok {
		add(where, "repeats the name of %s", first)
		return
	}
	seen[name] = strings.TrimSuffix(strings.TrimSuffix(where, ".name"), ".label")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkToolURL says what is wrong with the URL of a tool or an MCP server,
// or "". It never quotes the URL, which may hold a token.
func checkToolURL(s string) string {
	if s == "" {
		return "is required"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Scheme == "" {
		return "must be an absolute https URL"
	}
	if u.User != nil {
		return "must not hold a user or password"
	}
	switch {
	case httpsOrLoopback(u):
		return ""
	case u.Scheme == "http":
		return fmt.Sprintf("must use https; http is allowed for a loopback host only (got http for %q)", u.Hostname())
	default:
		return fmt.Sprintf("must be an https URL (got the scheme %q)", u.Scheme)
	}
}

// schemaURL names a tool's parameters while they are compiled; nothing is
// fetched from it.
const schemaURL = "https://tools.invalid/parameters.json"

// checkSchema says what is wrong with a tool's parameters, or "": nil (no
// arguments) or a JSON Schema of an object, which compiles (draft 2020-12,
// no references to other documents).
func checkSchema(raw json.RawMessage) string {
	if raw == nil {
		return ""
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "must be a JSON Schema object (a mapping with type: object)"
	}
	if obj["type"] != "object" {
		return "must have type: object (a tool's arguments are a JSON object)"
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err == nil {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.UseLoader(jsonschema.SchemeURLLoader{}) // no file or network access
		if err = c.AddResource(schemaURL, doc); err == nil {
			_, err = c.Compile(schemaURL)
		}
	}
	if err != nil {
		return "is not a valid JSON Schema: " + schemaError(err)
	}
	return ""
}

// schemaError is the gist of a schema's compile error: where the first
// offending keyword is and what is wrong with it.
func schemaError(err error) string {
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &sve) && errors.As(sve.Err, &ve) {
		if leaf := firstLeaf(ve.DetailedOutput()); leaf != nil {
			at := leaf.InstanceLocation
			if at == "" {
				at = "/"
			}
			return fmt.Sprintf("at %s: %s", at, leaf.Error)
		}
	}
	msg := strings.ReplaceAll(err.Error(), schemaURL, "parameters")
	return strings.Join(strings.Fields(msg), " ")
}

// firstLeaf is the first error of u that has no nested errors.
func firstLeaf(u *jsonschema.OutputUnit) *jsonschema.OutputUnit {
	if len(u.Errors) == 0 {
		if u.Error == nil {
			return nil
		}
		return u
	}
	for i := range u.Errors {
		if leaf := firstLeaf(&u.Errors[i]); leaf != nil {
			return leaf
		}
	}
	return nil
}
