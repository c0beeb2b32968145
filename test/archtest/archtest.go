// Package archtest enforces the gateway's dependency rules (README.md,
// "Architecture rules") on the module's real import graph:
//
//   - domain imports only the standard library;
//   - ports imports domain and the standard library (ports/porttest, the
//     importable conformance suites, may also import ports, testify and
//     goleak);
//   - app (the use cases) imports domain, ports, the standard library and
//     golang.org/x/sync; app/wire, the composition root, may import
//     adapters, configs and anything else a binary needs, and nothing but
//     cmd and test imports it;
//   - adapters never import app, cmd, configs or test;
//   - an adapter imports no other adapter: of the adapters it may import
//     only its own subtree and shared internals, the internal packages of
//     adapters or of one of its parents (adapters/internal/...,
//     adapters/openai/internal/... from adapters/openai/...);
//   - only app/wire, cmd and test import adapters;
//   - only adapters/httpapi (and cmd, test) import echo;
//   - only configs (and cmd, test) import viper;
//   - the shipped binaries (the main packages under cmd) link neither
//     testify nor ports/porttest, directly or through what they import
//     (CheckBinaries).
//
// The rules apply to the packages' non-test imports: what ships in the
// binary. Check is pure, so its rules are tested on synthetic graphs too;
// Load reads the real graph with `go list -deps -json`.
package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Package is one package of the import graph.
type Package struct {
	ImportPath string
	Name       string   // the package clause's name: "main" for a binary
	Standard   bool     // part of the standard library
	Imports    []string // direct, non-test imports
}

// Violation is one import that breaks a rule.
type Violation struct {
	Package, Import, Rule string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s imports %s: %s", v.Package, v.Import, v.Rule)
}

// rule is one dependency rule: for packages matched by from (given their
// path relative to the module), every import must satisfy allow.
type rule struct {
	text  string
	from  func(rel string) bool
	allow func(imp dep) bool
}

// dep is an import as the rules see it.
type dep struct {
	path string
	std  bool
	rel  string // path relative to the module; "" when outside it
	own  bool   // inside the module
	by   string // the importing package, relative to the module
}

func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

func external(path, prefix string) bool { return path == prefix || strings.HasPrefix(path, prefix+"/") }

const (
	echoPath  = "github.com/labstack/echo"
	viperPath = "github.com/spf13/viper"
)

// anywhere except the layers that may import anything.
func notCmdOrTest(rel string) bool { return !under(rel, "cmd") && !under(rel, "test") }

// sharedInternal reports whether the adapter package imp is a shared
// internal package for by: one under an "internal" directory (the last, as
// Go's own rule) whose parent is adapters or another parent of by, like
// adapters/internal/... for every adapter and adapters/openai/internal/...
// for adapters/openai/....
func sharedInternal(by, imp string) bool {
	parts := strings.Split(imp, "/")
	i := len(parts) - 1
	for i >= 0 && parts[i] != "internal" {
		i--
	}
	if i < 0 {
		return false
	}
	parent := strings.Join(parts[:i], "/")
	return under(parent, "adapters") && under(by, parent)
}

var rules = []rule{
	{
		text:  "domain may import only the standard library",
		from:  func(rel string) bool { return under(rel, "domain") },
		allow: func(d dep) bool { return d.std || (d.own && under(d.rel, "domain")) },
	},
	{
		text: "ports may import only domain and the standard library",
		from: func(rel string) bool { return under(rel, "ports") && !under(rel, "ports/porttest") },
		allow: func(d dep) bool {
			return d.std || (d.own && (under(d.rel, "domain") || under(d.rel, "ports") && !under(d.rel, "ports/porttest")))
		},
	},
	{
		text: "ports/porttest may import only domain, ports, testify, goleak and the standard library",
		from: func(rel string) bool { return under(rel, "ports/porttest") },
		allow: func(d dep) bool {
			return d.std || (d.own && (under(d.rel, "domain") || under(d.rel, "ports"))) ||
				external(d.path, "github.com/stretchr/testify") || external(d.path, "go.uber.org/goleak")
		},
	},
	{
		text: "app may import only domain, ports, golang.org/x/sync and the standard library",
		from: func(rel string) bool { return under(rel, "app") && !under(rel, "app/wire") },
		allow: func(d dep) bool {
			return d.std || (d.own && (under(d.rel, "domain") || under(d.rel, "app") ||
				under(d.rel, "ports") && !under(d.rel, "ports/porttest"))) ||
				external(d.path, "golang.org/x/sync")
		},
	},
	{
		text:  "only cmd and test may import the composition root app/wire",
		from:  notCmdOrTest,
		allow: func(d dep) bool { return !d.own || !under(d.rel, "app/wire") },
	},
	{
		text: "adapters must not import app, cmd, configs or test",
		from: func(rel string) bool { return under(rel, "adapters") },
		allow: func(d dep) bool {
			return !d.own || !(under(d.rel, "app") || under(d.rel, "cmd") || under(d.rel, "configs") || under(d.rel, "test"))
		},
	},
	{
		text: "an adapter may import no other adapter, only its own subtree and shared internals (adapters/internal/..., <parent>/internal/...)",
		from: func(rel string) bool { return under(rel, "adapters") },
		allow: func(d dep) bool {
			return !d.own || !under(d.rel, "adapters") || under(d.rel, d.by) || sharedInternal(d.by, d.rel)
		},
	},
	{
		text: "only app/wire, cmd and test may import adapters",
		from: func(rel string) bool {
			return notCmdOrTest(rel) && !under(rel, "adapters") && !under(rel, "app/wire")
		},
		allow: func(d dep) bool { return !d.own || !under(d.rel, "adapters") },
	},
	{
		text:  "only adapters/httpapi may import echo",
		from:  func(rel string) bool { return notCmdOrTest(rel) && !under(rel, "adapters/httpapi") },
		allow: func(d dep) bool { return !external(d.path, echoPath) },
	},
	{
		text:  "only configs may import viper",
		from:  func(rel string) bool { return notCmdOrTest(rel) && !under(rel, "configs") },
		allow: func(d dep) bool { return !external(d.path, viperPath) },
	},
}

// Check returns every import of module's packages in pkgs that breaks a
// rule, in a stable order. pkgs may hold packages outside the module (the
// dependencies): they are used to tell standard-library imports apart and
// are not checked themselves.
func Check(module string, pkgs []Package) []Violation {
	std := make(map[string]bool, len(pkgs))
	for _, p := range pkgs {
		std[p.ImportPath] = p.Standard
	}
	var out []Violation
	for _, p := range pkgs {
		rel, own := relative(module, p.ImportPath)
		if !own {
			continue
		}
		for _, imp := range p.Imports {
			d := dep{path: imp, std: isStd(imp, std), by: rel}
			d.rel, d.own = relative(module, imp)
			for _, r := range rules {
				if r.from(rel) && !r.allow(d) {
					out = append(out, Violation{Package: p.ImportPath, Import: imp, Rule: r.text})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Violation) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// testOnly are the packages no shipped binary may link: test libraries
// and the conformance suites built on them.
var testOnly = []string{"github.com/stretchr/testify", "ports/porttest"}

// CheckBinaries returns, for each main package under cmd in pkgs, every
// test-only package (testOnly: testify, ports/porttest) it links, with the
// import that brings it in, in a stable order. pkgs must hold the
// dependencies too (go list -deps).
func CheckBinaries(module string, pkgs []Package) []Violation {
	byPath := make(map[string]Package, len(pkgs))
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	forbidden := func(path string) bool {
		rel, own := relative(module, path)
		for _, f := range testOnly {
			if external(path, f) || own && under(rel, f) {
				return true
			}
		}
		return false
	}
	var out []Violation
	for _, p := range pkgs {
		rel, own := relative(module, p.ImportPath)
		if !own || p.Name != "main" || !under(rel, "cmd") {
			continue
		}
		// Walk the binary's imports; from records who imported each
		// package first, to name the chain's first link in the module.
		from := map[string]string{p.ImportPath: ""}
		queue := []string{p.ImportPath}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, imp := range byPath[cur].Imports {
				if _, seen := from[imp]; seen {
					continue
				}
				from[imp] = cur
				if forbidden(imp) {
					out = append(out, Violation{Package: p.ImportPath, Import: imp,
						Rule: "a shipped binary must not link test code (linked through " + cur + ")"})
					continue
				}
				queue = append(queue, imp)
			}
		}
	}
	slices.SortFunc(out, func(a, b Violation) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// relative returns path relative to module and whether it is inside it.
func relative(module, path string) (string, bool) {
	if path == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// isStd reports whether imp is a standard-library package: as go list says,
// or, for a package go list did not describe, by the absence of a dot in
// its first path element.
func isStd(imp string, known map[string]bool) bool {
	if s, ok := known[imp]; ok {
		return s
	}
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

// Load runs `go list -e -deps -json ./...` in the module that contains dir
// and returns the module path and its packages with their dependencies.
// Packages that do not compile are still listed (-e) with the imports go
// list could read.
func Load(dir string) (string, []Package, error) {
	gomod, err := goCmd(dir, "env", "GOMOD")
	if err != nil {
		return "", nil, err
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	module, err := goCmd(root, "list", "-m")
	if err != nil {
		return "", nil, err
	}
	out, err := goCmd(root, "list", "-e", "-deps", "-json=ImportPath,Name,Standard,Imports", "./...")
	if err != nil {
		return "", nil, err
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", nil, fmt.Errorf("archtest: decode go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return strings.TrimSpace(string(module)), pkgs, nil
}

func goCmd(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("archtest: go %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}
