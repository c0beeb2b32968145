package check

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// klog (through k8s.io/apimachinery) starts its flush daemon at init.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	)
}

// root is the repository's top directory (this module is deploy/check).
func root(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "go.mod"))
	require.NoError(t, err, "the repository root must hold go.mod")
	return dir
}

// repoFile returns the path of a file of the repository, given with
// slashes relative to its root.
func repoFile(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(root(t), filepath.FromSlash(rel))
}

func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, rel))
	require.NoError(t, err)
	return b
}

// settingLine is a line of configs/.env.example that names a setting: set
// ("PORT=5050") or shown commented out ("# PUBLIC_URL=https://…").
var settingLine = regexp.MustCompile(`^(?:#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)

// envExample returns the settings of configs/.env.example: every name,
// with the value shown (the default for the lines that are set).
func envExample(t testing.TB) map[string]string {
	t.Helper()
	f, err := os.Open(repoFile(t, "configs/.env.example"))
	require.NoError(t, err)
	defer f.Close()
	settings := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := settingLine.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			settings[m[1]] = m[2]
		}
	}
	require.NoError(t, sc.Err())
	require.Contains(t, settings, "OPENAI_API_KEY", "configs/.env.example lists the settings")
	return settings
}

// requireSettings fails unless every name in names is a setting of
// configs/.env.example: the deployment files stay true as settings are
// renamed, and a typo does not pass for a setting.
func requireSettings(t testing.TB, where string, names ...string) {
	t.Helper()
	settings := envExample(t)
	for _, name := range names {
		if _, ok := settings[name]; !ok {
			t.Errorf("%s sets %s, which is not a setting of configs/.env.example", where, name)
		}
	}
}

// secretSettings are the settings whose values are secrets (or hold one:
// a password in a URL). The deployment files take them from a Secret, a
// prompt or a file outside the repository, never inline.
var secretSettings = []string{
	"OPENAI_API_KEY",
	"TWILIO_AUTH_TOKEN",
	"TWILIO_WEBHOOK_SHARED_KEY",
	"DATABASE_URL",
	"REDIS_URL",
}

func isSecret(name string) bool {
	for _, s := range secretSettings {
		if s == name {
			return true
		}
	}
	return false
}

// shutdownDrain returns SHUTDOWN_DRAIN as value sets it, or the default of
// configs/.env.example when value is empty.
func shutdownDrain(t testing.TB, value string) time.Duration {
	t.Helper()
	if value == "" {
		value = envExample(t)["SHUTDOWN_DRAIN"]
	}
	d, err := time.ParseDuration(value)
	require.NoError(t, err, "SHUTDOWN_DRAIN %q", value)
	return d
}

// defaultPort is PORT's default in configs/.env.example.
func defaultPort(t testing.TB) string {
	t.Helper()
	port := envExample(t)["PORT"]
	require.NotEmpty(t, port)
	return port
}

// healthPath and readyPath are the gateway's liveness and readiness
// routes; the release test GETs them from the running binary.
const (
	healthPath = "/health"
	readyPath  = "/ready"
)

// runtimeUID is the image's user (distroless' nonroot); the Dockerfile,
// the Deployment and the release test agree on it.
const runtimeUID = 65532
