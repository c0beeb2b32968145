package livesim

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	oai "github.com/openai/openai-go/v3/live"
)

// The checks of client events come from the SDK's own types: the union of
// client events names every event type and its param struct, and the
// structs' `api:"required"` tags and JSON names say what an event must and
// may hold. The simulator answers an event that breaks them with an error
// event, as the API does.

// problem is what is wrong with a client event, in the API's words.
type problem struct {
	code    string // "invalid_value", "missing_required_parameter", "unknown_parameter"
	param   string // where: "session.model"
	message string
}

func (p *problem) Error() string { return p.code + ": " + p.message }

// Check checks a client event as the simulator does: nil when the SDK's
// types accept it, else an error naming the code the simulator answers
// with and the parameter at fault.
func Check(event []byte) error {
	if _, p := checkClientEvent(event); p != nil {
		return p
	}
	return nil
}

// clientEvents maps every client event type to its param struct.
var clientEvents = variants(reflect.TypeFor[oai.ClientEventUnionParam]())

// variants maps the discriminators of a union's variants (the default of
// their Type field) to the variants' struct types.
func variants(union reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range union.NumField() {
		f := union.Field(i)
		if !strings.HasPrefix(f.Name, "Of") {
			continue
		}
		t := f.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			continue
		}
		if tf, ok := t.FieldByName("Type"); ok && tf.Tag.Get("default") != "" {
			m[tf.Tag.Get("default")] = t
		}
	}
	return m
}

// checkClientEvent checks one client event (a JSON object) against the SDK:
// its type must be one of the union's, its fields those of the type's
// struct, with every required one present (null counts as present: some
// are required but nullable).
func checkClientEvent(raw []byte) (typ string, p *problem) {
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", &problem{code: "invalid_json", message: "The event is not a JSON object."}
	}
	typ, _ = v["type"].(string)
	t, ok := clientEvents[typ]
	if !ok {
		return typ, &problem{code: "invalid_value", param: "type",
			message: "Invalid value: '" + typ + "'. Supported values are the Live client event types."}
	}
	return typ, check("", v, t)
}

// isUnion tells a union (its variants are inline fields named Of...) from
// an object.
func isUnion(t reflect.Type) bool {
	for i := range t.NumField() {
		if f := t.Field(i); strings.HasPrefix(f.Name, "Of") && strings.Contains(f.Tag.Get("json"), "inline") {
			return true
		}
	}
	return false
}

// isOpt tells param.Opt[T] and other scalar wrappers, which the check
// leaves alone.
func isOpt(t reflect.Type) bool {
	return strings.HasSuffix(t.PkgPath(), "packages/param") && strings.HasPrefix(t.Name(), "Opt[")
}

func check(path string, v any, t reflect.Type) *problem {
	if v == nil { // null: present, and many required fields are nullable
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return nil
		}
		for _, e := range list {
			if p := check(path, e, t.Elem()); p != nil {
				return p
			}
		}
		return nil
	case t.Kind() != reflect.Struct || isOpt(t):
		return nil
	case isUnion(t):
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a scalar variant (a voice's name)
		}
		kind, _ := obj["type"].(string)
		if variant, ok := variants(t)[kind]; ok {
			return check(path, obj, variant)
		}
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return &problem{code: "invalid_type", param: path, message: "Invalid type for '" + path + "': expected an object."}
	}
	known := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		known[name] = true
		val, present := obj[name]
		if !present {
			if f.Tag.Get("api") == "required" {
				return &problem{code: "missing_required_parameter", param: join(path, name),
					message: "Missing required parameter: '" + join(path, name) + "'."}
			}
			continue
		}
		if p := check(join(path, name), val, f.Type); p != nil {
			return p
		}
	}
	var unknown []string
	for name := range obj {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		name := slices.Min(unknown) // the same answer every time
		return &problem{code: "unknown_parameter", param: join(path, name),
			message: "Unknown parameter: '" + join(path, name) + "'."}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
