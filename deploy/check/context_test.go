package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runOut runs name with args in dir and returns its output; the test
// fails, with the output, when it fails.
func runOut(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// contextMatcher reads .dockerignore as BuildKit does.
func contextMatcher(t testing.TB) *patternmatcher.PatternMatcher {
	t.Helper()
	patterns, err := ignorefile.ReadAll(bytes.NewReader(readRepoFile(t, ".dockerignore")))
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	return pm
}

// inContext reports whether the file rel (slash-separated, relative to
// the repository root) is sent to the image's build.
func inContext(t testing.TB, pm *patternmatcher.PatternMatcher, rel string) bool {
	t.Helper()
	excluded, err := pm.MatchesOrParentMatches(filepath.FromSlash(rel))
	require.NoError(t, err)
	return !excluded
}

// buildContext copies the repository's files that .dockerignore lets into
// the build context to a new directory, as docker build sends them, and
// returns it. Like BuildKit's, it has no .git.
func buildContext(t testing.TB) string {
	t.Helper()
	src, dst := root(t), t.TempDir()
	pm := contextMatcher(t)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		if !inContext(t, pm, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil // sockets, symlinks: none in this repository's build
	})
	require.NoError(t, err)
	return dst
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return errors.Join(err, out.Close())
	}
	return out.Close()
}

// The build context holds every file that make release reads (go.mod,
// go.sum, the Makefile, the Go and embedded files of every package of the
// module that cmd/gateway imports) and not what must stay out: .git (the
// version comes in as a build argument), .env, local builds and data.
func TestBuildContextHoldsWhatTheBuildNeeds(t *testing.T) {
	pm := contextMatcher(t)
	for _, f := range []string{"go.mod", "go.sum", "Makefile", "cmd/gateway/main.go"} {
		assert.True(t, inContext(t, pm, f), "%s must be in the build context", f)
	}
	for _, f := range []string{".git", ".git/HEAD", ".env", "bin/gateway", "data/gateway.db", "twilio/node_modules/x/package.json", "deploy/check/go.mod", "load.json"} {
		assert.False(t, inContext(t, pm, f), "%s must stay out of the build context", f)
	}

	cmd := exec.Command("go", "list", "-deps", "-json=Dir,ImportPath,GoFiles,EmbedFiles,Module", "./cmd/gateway")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(out))
	var checked int
	for dec.More() {
		var pkg struct {
			Dir, ImportPath     string
			GoFiles, EmbedFiles []string
			Module              *struct{ Main bool }
		}
		require.NoError(t, dec.Decode(&pkg))
		if pkg.Module == nil || !pkg.Module.Main {
			continue // the standard library and the module cache
		}
		rel, err := filepath.Rel(root(t), pkg.Dir)
		require.NoError(t, err)
		for _, f := range append(pkg.GoFiles, pkg.EmbedFiles...) {
			file := path.Join(filepath.ToSlash(rel), f)
			assert.True(t, inContext(t, pm, file), "%s (package %s) is needed by the build but .dockerignore leaves it out", file, pkg.ImportPath)
			checked++
		}
	}
	assert.Greater(t, checked, 50, "the gateway's own files were checked")
}
