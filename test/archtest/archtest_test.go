package archtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestModuleFollowsDependencyRules checks the real import graph.
func TestModuleFollowsDependencyRules(t *testing.T) {
	module, pkgs, err := Load(".")
	require.NoError(t, err)
	require.Equal(t, "github.com/convgateway/gateway", module)
	own := 0
	for _, p := range pkgs {
		if _, ok := relative(module, p.ImportPath); ok {
			own++
		}
	}
	require.Greater(t, own, 3, "go list must have listed the module's packages")
	for _, v := range Check(module, pkgs) {
		t.Errorf("dependency rule broken: %s", v)
	}
	mains := 0
	for _, p := range pkgs {
		if rel, own := relative(module, p.ImportPath); own && p.Name == "main" && under(rel, "cmd") {
			mains++
		}
	}
	require.GreaterOrEqual(t, mains, 4, "the gateway, demo, callsim and loadtest binaries are listed")
	for _, v := range CheckBinaries(module, pkgs) {
		t.Errorf("test code in a binary: %s", v)
	}
}

func TestCheckBinaries(t *testing.T) {
	const m = "example.com/gw"
	pkgs := []Package{
		{ImportPath: m + "/cmd/demo", Name: "main", Imports: []string{m + "/test/sim/rt", "fmt"}},
		{ImportPath: m + "/test/sim/rt", Name: "rt", Imports: []string{m + "/ports/porttest"}},
		{ImportPath: m + "/ports/porttest", Name: "porttest", Imports: []string{"github.com/stretchr/testify/require"}},
		{ImportPath: "github.com/stretchr/testify/require", Name: "require"},
		{ImportPath: m + "/cmd/gateway", Name: "main", Imports: []string{m + "/ports", "fmt"}},
		{ImportPath: m + "/ports", Name: "ports"},
		{ImportPath: "fmt", Name: "fmt", Standard: true},
		{ImportPath: m + "/test/e2e", Name: "e2e", Imports: []string{m + "/ports/porttest"}}, // not a binary
	}
	got := CheckBinaries(m, pkgs)
	require.Len(t, got, 1, "%v", got)
	assert.Equal(t, m+"/cmd/demo", got[0].Package)
	assert.Equal(t, m+"/ports/porttest", got[0].Import)
	assert.Contains(t, got[0].Rule, m+"/test/sim/rt", "the rule names the link that brings it in")
}

// The texts of the rules on importing adapters.
const (
	adapterImportsAdapter   = "an adapter may import no other adapter, only its own subtree and shared internals (adapters/internal/..., <parent>/internal/...)"
	onlyWireImportsAdapters = "only app/wire, cmd and test may import adapters"
)

// TestCheck shows that each rule catches its violation and lets the allowed
// imports through, on synthetic graphs.
func TestCheck(t *testing.T) {
	const m = "example.com/gw"
	std := []Package{{ImportPath: "context", Standard: true}, {ImportPath: "net/http", Standard: true}}
	tests := []struct {
		name string
		pkg  Package
		want []string // rules broken, one per violation
	}{
		{"domain stdlib only", Package{ImportPath: m + "/domain", Imports: []string{"context", "strings"}}, nil},
		{"domain imports ports", Package{ImportPath: m + "/domain", Imports: []string{m + "/ports"}},
			[]string{"domain may import only the standard library"}},
		{"domain imports a module", Package{ImportPath: m + "/domain/sub", Imports: []string{"github.com/google/uuid"}},
			[]string{"domain may import only the standard library"}},
		{"ports imports domain", Package{ImportPath: m + "/ports", Imports: []string{m + "/domain", "context"}}, nil},
		{"ports imports an adapter", Package{ImportPath: m + "/ports", Imports: []string{m + "/adapters/fake"}},
			[]string{"ports may import only domain and the standard library", onlyWireImportsAdapters}},
		{"porttest imports testify", Package{ImportPath: m + "/ports/porttest", Imports: []string{m + "/ports", "github.com/stretchr/testify/require", "testing"}}, nil},
		{"porttest imports an adapter", Package{ImportPath: m + "/ports/porttest", Imports: []string{m + "/adapters/store/memory"}},
			[]string{"ports/porttest may import only domain, ports, testify, goleak and the standard library", onlyWireImportsAdapters}},
		{"app imports ports and x/sync", Package{ImportPath: m + "/app", Imports: []string{m + "/ports", m + "/domain", "golang.org/x/sync/errgroup"}}, nil},
		{"app imports an adapter", Package{ImportPath: m + "/app", Imports: []string{m + "/adapters/store/memory"}},
			[]string{"app may import only domain, ports, golang.org/x/sync and the standard library", onlyWireImportsAdapters}},
		{"configs imports an adapter", Package{ImportPath: m + "/configs", Imports: []string{m + "/adapters/store/sqlite"}},
			[]string{onlyWireImportsAdapters}},
		{"domain imports an adapter", Package{ImportPath: m + "/domain", Imports: []string{m + "/adapters/audio"}},
			[]string{"domain may import only the standard library", onlyWireImportsAdapters}},
		{"app imports echo", Package{ImportPath: m + "/app", Imports: []string{"github.com/labstack/echo/v4"}},
			[]string{"app may import only domain, ports, golang.org/x/sync and the standard library", "only adapters/httpapi may import echo"}},
		{"wire imports adapters and configs", Package{ImportPath: m + "/app/wire", Imports: []string{m + "/adapters/openai/realtime", m + "/configs", m + "/app", m + "/ports"}}, nil},
		{"a use case imports wire", Package{ImportPath: m + "/app", Imports: []string{m + "/app/wire"}},
			[]string{"only cmd and test may import the composition root app/wire"}},
		{"adapter imports app", Package{ImportPath: m + "/adapters/openai/realtime", Imports: []string{m + "/app", m + "/ports"}},
			[]string{"adapters must not import app, cmd, configs or test"}},
		{"adapter imports configs", Package{ImportPath: m + "/adapters/store/sqlite", Imports: []string{m + "/configs"}},
			[]string{"adapters must not import app, cmd, configs or test"}},
		{"adapter imports its own subtree and ports", Package{ImportPath: m + "/adapters/openai/realtime", Imports: []string{m + "/adapters/openai/realtime/events", m + "/ports", m + "/domain"}}, nil},
		{"adapter imports adapters/internal", Package{ImportPath: m + "/adapters/twilio/mediastream", Imports: []string{m + "/adapters/internal/wsstream", m + "/adapters/internal/jsonscan"}}, nil},
		{"adapter imports its parent's internal", Package{ImportPath: m + "/adapters/openai/responses", Imports: []string{m + "/adapters/openai/internal/rest"}}, nil},
		{"an internal package imports another", Package{ImportPath: m + "/adapters/openai/internal/rest", Imports: []string{m + "/adapters/internal/jsonscan"}}, nil},
		{"httpapi imports a twilio adapter", Package{ImportPath: m + "/adapters/httpapi", Imports: []string{m + "/adapters/twilio/signature", m + "/adapters/twilio/mediastream"}},
			[]string{adapterImportsAdapter, adapterImportsAdapter}},
		{"fake imports a store", Package{ImportPath: m + "/adapters/fake", Imports: []string{m + "/adapters/store/memory"}},
			[]string{adapterImportsAdapter}},
		{"adapter imports its sibling", Package{ImportPath: m + "/adapters/store/postgres", Imports: []string{m + "/adapters/store/sqlite"}},
			[]string{adapterImportsAdapter}},
		{"adapter imports its parent", Package{ImportPath: m + "/adapters/store/postgres", Imports: []string{m + "/adapters/store"}},
			[]string{adapterImportsAdapter}},
		{"adapter imports another's internal", Package{ImportPath: m + "/adapters/twilio/messaging", Imports: []string{m + "/adapters/openai/internal/rest"}},
			[]string{adapterImportsAdapter}},
		{"an internal package imports an adapter", Package{ImportPath: m + "/adapters/internal/memstore", Imports: []string{m + "/adapters/store/memory"}},
			[]string{adapterImportsAdapter}},
		{"a package named internal is not shared", Package{ImportPath: m + "/adapters/fake", Imports: []string{m + "/adapters/internalx"}},
			[]string{adapterImportsAdapter}},
		{"httpapi imports echo", Package{ImportPath: m + "/adapters/httpapi", Imports: []string{"github.com/labstack/echo/v4/middleware", m + "/ports"}}, nil},
		{"another adapter imports echo", Package{ImportPath: m + "/adapters/twilio/messaging", Imports: []string{"github.com/labstack/echo/v4"}},
			[]string{"only adapters/httpapi may import echo"}},
		{"configs imports viper", Package{ImportPath: m + "/configs", Imports: []string{"github.com/spf13/viper"}}, nil},
		{"adapter imports viper", Package{ImportPath: m + "/adapters/httpapi", Imports: []string{"github.com/spf13/viper"}},
			[]string{"only configs may import viper"}},
		{"cmd imports anything", Package{ImportPath: m + "/cmd/gateway", Imports: []string{"github.com/spf13/viper", "github.com/labstack/echo/v4", m + "/app", m + "/adapters/httpapi"}}, nil},
		{"test imports anything", Package{ImportPath: m + "/test/e2e", Imports: []string{"github.com/labstack/echo/v4", m + "/app"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(m, append(std, tt.pkg))
			var rules []string
			for _, v := range got {
				assert.Equal(t, tt.pkg.ImportPath, v.Package)
				rules = append(rules, v.Rule)
			}
			assert.ElementsMatch(t, tt.want, rules)
		})
	}
}

func TestCheckIgnoresPackagesOutsideTheModule(t *testing.T) {
	pkgs := []Package{{ImportPath: "github.com/other/domain", Imports: []string{"github.com/labstack/echo/v4"}}}
	assert.Empty(t, Check("example.com/gw", pkgs))
}

func TestIsStd(t *testing.T) {
	known := map[string]bool{"example.com/x": false, "net/http": true}
	assert.True(t, isStd("net/http", known))
	assert.False(t, isStd("example.com/x", known))
	assert.True(t, isStd("crypto/sha256", known), "unlisted path without a dot")
	assert.False(t, isStd("github.com/a/b", known), "unlisted path with a dot")
}
