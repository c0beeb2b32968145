package check

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yamlv3 "go.yaml.in/yaml/v3"
)

// Every YAML file of the repository parses, every document of it, without
// a duplicate key (which YAML readers resolve differently).
func TestEveryYAMLFileParses(t *testing.T) {
	top := root(t)
	var files []string
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, p)
		}
		return nil
	})
	require.NoError(t, err)
	for _, f := range files {
		rel, _ := filepath.Rel(top, f)
		dec := yamlv3.NewDecoder(bytes.NewReader(readRepoFile(t, filepath.ToSlash(rel))))
		for docs := 0; ; docs++ {
			var doc yamlv3.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				assert.Positive(t, docs, "%s holds no YAML document", rel)
				break
			}
			if !assert.NoError(t, err, rel) {
				break
			}
		}
	}
	for _, want := range []string{"compose.yaml", "render.yaml", "deploy/kubernetes/deployment.yaml", "configs/gateway.example.yaml"} {
		assert.Contains(t, files, filepath.Join(top, filepath.FromSlash(want)))
	}
}
