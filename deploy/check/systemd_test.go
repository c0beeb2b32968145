package check

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const systemdUnit = "deploy/systemd/gateway.service"

// The unit starts the gateway from its settings file as a user of its
// own, sends SIGTERM and waits longer than SHUTDOWN_DRAIN before killing.
func TestSystemdUnit(t *testing.T) {
	opts, err := unit.DeserializeOptions(bytes.NewReader(readRepoFile(t, systemdUnit)))
	require.NoError(t, err)
	service := map[string][]string{}
	for _, o := range opts {
		if o.Section == "Service" {
			service[o.Name] = append(service[o.Name], o.Value)
		}
	}
	one := func(name string) string {
		t.Helper()
		require.Len(t, service[name], 1, "[Service] %s=", name)
		return service[name][0]
	}
	assert.Equal(t, "/usr/local/bin/gateway serve", one("ExecStart"))
	assert.Equal(t, "/etc/gateway/env", one("EnvironmentFile"), "the settings, secrets among them, come from a file of root's")
	assert.Equal(t, "SIGTERM", one("KillSignal"))
	assert.Equal(t, "yes", one("DynamicUser"), "not root")
	assert.Equal(t, "/var/lib/"+one("StateDirectory"), one("WorkingDirectory"), "the SQLite file's directory is the service's state")
	stop, err := time.ParseDuration(one("TimeoutStopSec") + "s")
	require.NoError(t, err)
	assert.Greater(t, stop, shutdownDrain(t, ""), "TimeoutStopSec must exceed SHUTDOWN_DRAIN")

	var names []string
	for _, env := range service["Environment"] {
		for _, kv := range strings.Fields(env) {
			name, _, _ := strings.Cut(strings.Trim(kv, `"`), "=")
			names = append(names, name)
			assert.False(t, isSecret(name), "%s must come from the EnvironmentFile", name)
		}
	}
	requireSettings(t, systemdUnit, names...)
}

// systemd's own parser reads the unit without a complaint about its
// syntax (a missing binary and the absence of a running systemd aside);
// where systemd-analyze is not installed, the test skips.
func TestSystemdAnalyzeVerifiesTheUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("skipping: systemd-analyze is not installed")
	}
	path := repoFile(t, systemdUnit)
	cmd := exec.Command(analyze, "verify", path)
	out, _ := cmd.CombinedOutput() // fails here anyway: /usr/local/bin/gateway is not installed
	// A syntax problem is reported as path:line: message.
	bad := regexp.MustCompile(regexp.QuoteMeta(path) + `:\d+: .*`)
	assert.Empty(t, bad.FindAllString(string(out), -1), "systemd-analyze verify:\n%s", out)
}
