package check

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yamlv3 "go.yaml.in/yaml/v3"
)

// composeDir lays out what docker compose up reads, in a new directory:
// compose.yaml and the proxy's Caddyfile as they are, and the .env a
// newcomer makes (configs/.env.example plus the stores' passwords), with
// extra lines appended.
func composeDir(t testing.TB, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"compose.yaml", "deploy/compose/Caddyfile", "Dockerfile"} {
		dst := filepath.Join(dir, filepath.FromSlash(f))
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, copyFile(repoFile(t, f), dst, 0o644))
	}
	env := string(readRepoFile(t, "configs/.env.example")) + strings.Join(extra, "\n") + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte(env), 0o600))
	return dir
}

// loadCompose loads compose.yaml from dir with compose-go, as docker
// compose does: .env in the project directory for the interpolation,
// env_file resolved, the Compose Specification's schema checked.
func loadCompose(t testing.TB, dir string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir),
		cli.WithEnvFiles(), // the project directory's .env
		cli.WithDotEnv,
	)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return opts.LoadProject(ctx)
}

const (
	testPostgresPassword = "0123456789abcdef0123456789abcdef"
	testRedisPassword    = "fedcba9876543210fedcba9876543210"
)

// One command brings up two gateways, PostgreSQL and Redis behind the
// proxy: the gateways wait for healthy stores, the proxy for healthy
// gateways, and every store has a health check and a volume.
func TestComposeBringsUpTheMultiInstanceSetup(t *testing.T) {
	p, err := loadCompose(t, composeDir(t, "POSTGRES_PASSWORD="+testPostgresPassword, "REDIS_PASSWORD="+testRedisPassword))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"gateway", "proxy", "postgres", "redis"}, p.ServiceNames())

	gw, err := p.GetService("gateway")
	require.NoError(t, err)
	require.NotNil(t, gw.Build, "the gateway is built from the Dockerfile")
	assert.Equal(t, "Dockerfile", filepath.Base(gw.Build.Dockerfile))
	assert.Contains(t, gw.Build.Args, "VERSION")
	require.NotNil(t, gw.Deploy)
	require.NotNil(t, gw.Deploy.Replicas)
	assert.Equal(t, 2, *gw.Deploy.Replicas, "two gateways")
	for _, store := range []string{"postgres", "redis"} {
		dep, ok := gw.DependsOn[store]
		require.True(t, ok, "the gateway depends on %s", store)
		assert.Equal(t, types.ServiceConditionHealthy, dep.Condition, "the gateway waits for a healthy %s", store)

		s, err := p.GetService(store)
		require.NoError(t, err)
		require.NotNil(t, s.HealthCheck, "%s has a health check", store)
		assert.False(t, s.HealthCheck.Disable)
		require.NotEmpty(t, s.Volumes, "%s keeps its data in a volume", store)
		assert.Equal(t, types.VolumeTypeVolume, s.Volumes[0].Type)
		assert.Contains(t, p.Volumes, s.Volumes[0].Source)
		assert.Empty(t, s.Ports, "%s is not published on the host", store)
	}
	proxy, err := p.GetService("proxy")
	require.NoError(t, err)
	assert.Equal(t, types.ServiceConditionHealthy, proxy.DependsOn["gateway"].Condition, "the proxy waits for healthy gateways")

	// The settings this file decides, over .env's.
	port := defaultPort(t)
	assert.Equal(t, port, *gw.Environment["PORT"])
	dbURL, err := url.Parse(*gw.Environment["DATABASE_URL"])
	require.NoError(t, err)
	assert.Equal(t, "postgres", dbURL.Scheme)
	assert.Equal(t, "postgres:5432", dbURL.Host, "the postgres service")
	pw, _ := dbURL.User.Password()
	assert.Equal(t, testPostgresPassword, pw, "the password of .env")
	pg, err := p.GetService("postgres")
	require.NoError(t, err)
	assert.Equal(t, testPostgresPassword, *pg.Environment["POSTGRES_PASSWORD"])
	assert.Equal(t, dbURL.User.Username(), *pg.Environment["POSTGRES_USER"])
	assert.Equal(t, strings.TrimPrefix(dbURL.Path, "/"), *pg.Environment["POSTGRES_DB"])
	redisURL, err := url.Parse(*gw.Environment["REDIS_URL"])
	require.NoError(t, err)
	assert.Equal(t, "redis:6379", redisURL.Host, "the redis service")
	pw, _ = redisURL.User.Password()
	assert.Equal(t, testRedisPassword, pw)
	// The rest comes from .env, as the newcomer filled it in.
	assert.Equal(t, envExample(t)["OPENAI_API_KEY"], *gw.Environment["OPENAI_API_KEY"])

	require.NotNil(t, gw.StopGracePeriod)
	assert.Greater(t, time.Duration(*gw.StopGracePeriod), shutdownDrain(t, ""), "stop_grace_period must exceed SHUTDOWN_DRAIN")

	// The proxy publishes PORT and sends it to every gateway on PORT.
	require.Len(t, proxy.Ports, 1)
	assert.Equal(t, port, proxy.Ports[0].Published)
	assert.Equal(t, port, strconv.FormatUint(uint64(proxy.Ports[0].Target), 10))
	caddyfile := string(readRepoFile(t, "deploy/compose/Caddyfile"))
	assert.Regexp(t, `(?m)^\s*dynamic a gateway `+port+`\b`, caddyfile, "Caddy asks Docker's DNS for every gateway replica on PORT")
	assert.Regexp(t, `(?m)^:`+port+` \{`, caddyfile, "Caddy listens on the published port")
}

// Without the stores' passwords in .env, compose stops and says which.
func TestComposeNeedsTheStoresPasswords(t *testing.T) {
	_, err := loadCompose(t, composeDir(t, "REDIS_PASSWORD="+testRedisPassword))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set POSTGRES_PASSWORD in .env")
	_, err = loadCompose(t, composeDir(t, "POSTGRES_PASSWORD="+testPostgresPassword))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set REDIS_PASSWORD in .env")
}

// urlPassword matches a URL with a password, before interpolation.
var urlPassword = regexp.MustCompile(`^[a-z]+://[^:/@]*:(.*)@[^@]*$`)

// interpolated matches a value that is only a variable of .env.
var interpolated = regexp.MustCompile(`^\$\{[A-Z_]+(?::\?[^}]*)?\}$`)

// compose.yaml as written: the gateway's own settings are settings of
// configs/.env.example, and no secret is written into it: the API keys
// come from .env, the passwords in the URLs are .env's variables.
func TestComposeInlinesNoSecret(t *testing.T) {
	var raw struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Command     []string          `yaml:"command"`
		} `yaml:"services"`
	}
	require.NoError(t, yamlv3.Unmarshal(readRepoFile(t, "compose.yaml"), &raw))
	gw := raw.Services["gateway"]
	var names []string
	for k, v := range gw.Environment {
		names = append(names, k)
		if !isSecret(k) {
			continue
		}
		m := urlPassword.FindStringSubmatch(v)
		require.NotNil(t, m, "%s must be a URL with a password, from .env: %s", k, v)
		assert.Regexp(t, interpolated, m[1], "%s's password is a variable of .env, not a value", k)
		for _, s := range []string{"OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "TWILIO_WEBHOOK_SHARED_KEY"} {
			assert.NotEqual(t, s, k, "%s must come from .env", s)
		}
	}
	requireSettings(t, "compose.yaml's gateway environment", names...)
	assert.Regexp(t, interpolated, raw.Services["postgres"].Environment["POSTGRES_PASSWORD"])
	assert.Regexp(t, interpolated, raw.Services["redis"].Environment["REDISCLI_AUTH"])
	cmd := raw.Services["redis"].Command
	i := indexOf(cmd, "--requirepass")
	require.GreaterOrEqual(t, i, 0, "redis requires a password")
	assert.Regexp(t, interpolated, cmd[i+1])
}

func indexOf(s []string, v string) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	return -1
}

// Caddy parses its Caddyfile as compose mounts it; where caddy is not
// installed, the test skips locally and fails under CI=true (.ci/run
// installs it).
func TestComposeProxyConfigIsValid(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and caddy is not installed (apt-get install caddy): it validates deploy/compose/Caddyfile")
		}
		t.Skip("skipping: caddy is not installed (apt-get install caddy)")
	}
	out := runOut(t, t.TempDir(), caddy, "adapt", "--validate", "--adapter", "caddyfile", "--config", repoFile(t, "deploy/compose/Caddyfile"))
	assert.Contains(t, out, `"dynamic_upstreams":{"name":"gateway"`)
}
