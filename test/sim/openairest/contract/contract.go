package contract

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed openai-openapi-subset.json
var subset []byte

const docURL = "https://contracts.invalid/openai-openapi-subset.json"

var (
	compileOnce sync.Once
	compiler    *jsonschema.Compiler
	compileErr  error

	mu      sync.Mutex
	schemas = make(map[string]*jsonschema.Schema)
)

// Validate reports whether body (JSON) is an instance of the schema named
// name in components/schemas (for example "CreateResponse" or
// "CreateRunRequest"). The error says where and why it is not. Safe for
// concurrent use.
func Validate(name string, body []byte) error {
	s, err := schema(name)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("contract: %s: body is not JSON: %w", name, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("contract: %s: %w", name, err)
	}
	return nil
}

func schema(name string) (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(subset))
		if err != nil {
			compileErr = err
			return
		}
		c := jsonschema.NewCompiler()
		// The description says 2020-12 but one schema (CompoundFilter) uses
		// 2019-09's $recursiveAnchor; 2019-09 reads every keyword of the
		// subset.
		c.DefaultDraft(jsonschema.Draft2019)
		compileErr = c.AddResource(docURL, doc)
		compiler = c
	})
	if compileErr != nil {
		return nil, fmt.Errorf("contract: load schemas: %w", compileErr)
	}
	mu.Lock()
	defer mu.Unlock()
	if s, ok := schemas[name]; ok {
		return s, nil
	}
	s, err := compiler.Compile(docURL + "#/components/schemas/" + name)
	if err != nil {
		return nil, fmt.Errorf("contract: compile %s: %w", name, err)
	}
	schemas[name] = s
	return s, nil
}
