package check

import (
	"bytes"
	"fmt"
	"go/version"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dockerfile is what the tests need of the Dockerfile, as BuildKit's own
// parser reads it.
type dockerfile struct {
	stages []instructions.Stage
	// build is the stage that runs make release; image is the last stage.
	build, image *instructions.Stage

	// makeRun is the build stage's shell command (of its RUN line, up to
	// an && or ;) that calls make release; the release test runs it.
	makeRun string
	// releaseOut is RELEASE_OUT of that line: where the binary is built.
	releaseOut string

	// The runtime configuration of the image.
	entrypoint, cmd []string
	healthcheck     []string // without the leading "CMD"
	healthInterval  time.Duration
	user            string
	uid, gid        int
	workdir         string
	env             map[string]string
	expose          []string
	volumes         []string
	stopSignal      string
	// copies maps each COPY destination of the image stage to its command.
	copies map[string]*instructions.CopyCommand
}

// makeRelease matches the command of a RUN line that calls make release,
// with the variables set before it.
var makeRelease = regexp.MustCompile(`(?:^|&&|;)\s*((?:[A-Z_]+="?[$\w]*"?\s+)*make release\b[^&;|]*)`)

// parseDockerfile parses the Dockerfile with BuildKit's parser and its
// linter; a parser warning or a lint warning fails the test.
func parseDockerfile(t testing.TB) dockerfile {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readRepoFile(t, "Dockerfile")))
	require.NoError(t, err)
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{
		Warn: func(rule, description, url, msg string, loc []parser.Range) {
			line := 0
			if len(loc) > 0 {
				line = loc[0].Start.Line
			}
			t.Errorf("Dockerfile:%d: BuildKit lint %s: %s", line, rule, msg)
		},
	})
	stages, _, err := instructions.Parse(res.AST, lint)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(stages), 2, "a multi-stage build")

	df := dockerfile{stages: stages, env: map[string]string{}, copies: map[string]*instructions.CopyCommand{}}
	df.image = &stages[len(stages)-1]
	for i := range stages {
		for _, c := range stages[i].Commands {
			if run, ok := c.(*instructions.RunCommand); ok {
				line := strings.Join(run.CmdLine, " ")
				if m := makeRelease.FindStringSubmatch(line); m != nil {
					require.Nil(t, df.build, "one stage runs make release")
					df.build, df.makeRun = &stages[i], strings.TrimSpace(m[1])
				}
			}
		}
	}
	require.NotNil(t, df.build, "a stage of the Dockerfile runs make release")
	if m := regexp.MustCompile(`\bRELEASE_OUT=(\S+)`).FindStringSubmatch(df.makeRun); m != nil {
		df.releaseOut = m[1]
	}

	for _, c := range df.image.Commands {
		switch c := c.(type) {
		case *instructions.EntrypointCommand:
			assert.False(t, c.PrependShell, "ENTRYPOINT in exec form: the image has no shell")
			df.entrypoint = c.CmdLine
		case *instructions.CmdCommand:
			assert.False(t, c.PrependShell, "CMD in exec form: the image has no shell")
			df.cmd = c.CmdLine
		case *instructions.HealthCheckCommand:
			require.NotEmpty(t, c.Health.Test)
			assert.Equal(t, "CMD", c.Health.Test[0], "HEALTHCHECK CMD in exec form: the image has no shell")
			df.healthcheck = c.Health.Test[1:]
			df.healthInterval = c.Health.Interval
		case *instructions.UserCommand:
			df.user = c.User
		case *instructions.WorkdirCommand:
			df.workdir = c.Path
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				df.env[kv.Key] = kv.Value
			}
		case *instructions.ExposeCommand:
			df.expose = append(df.expose, c.Ports...)
		case *instructions.VolumeCommand:
			df.volumes = append(df.volumes, c.Volumes...)
		case *instructions.StopSignalCommand:
			df.stopSignal = c.Signal
		case *instructions.CopyCommand:
			df.copies[c.DestPath] = c
		}
	}
	if ids := strings.Split(df.user, ":"); len(ids) == 2 {
		df.uid, _ = strconv.Atoi(ids[0])
		df.gid, _ = strconv.Atoi(ids[1])
	}
	return df
}

// The build stage: Go of go.mod's version or newer (the golang image pins
// its toolchain), the binary built by make release with the version as a
// build argument, since .git is not in the context.
func TestDockerfileBuildsWithMakeRelease(t *testing.T) {
	df := parseDockerfile(t)

	m := regexp.MustCompile(`^golang:(\d+\.\d+(?:\.\d+)?)-\w+$`).FindStringSubmatch(df.build.BaseName)
	require.NotNil(t, m, "the build stage is FROM golang:<version>-<distribution>, got %q", df.build.BaseName)
	goMod := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(readRepoFile(t, "go.mod"))
	require.NotNil(t, goMod)
	assert.GreaterOrEqual(t, version.Compare("go"+m[1], "go"+string(goMod[1])), 0,
		"the builder's Go %s must be at least go.mod's %s", m[1], goMod[1])

	assert.Contains(t, df.makeRun, `VERSION="$VERSION"`, "make release gets the VERSION build argument")
	assert.Contains(t, df.makeRun, `GOOS="$TARGETOS" GOARCH="$TARGETARCH" make release`, "built for the target platform")
	assert.Equal(t, "/out/gateway", df.releaseOut, "RELEASE_OUT of the make line")
	var args []string
	for _, c := range df.build.Commands {
		if a, ok := c.(*instructions.ArgCommand); ok {
			for _, kv := range a.Args {
				args = append(args, kv.Key)
			}
		}
	}
	assert.Contains(t, args, "VERSION", "the build stage declares ARG VERSION")

	// The image takes the binary that make release wrote, and runs it.
	cp, ok := df.copies[df.entrypoint[0]]
	require.True(t, ok, "the image COPYs its ENTRYPOINT %s", df.entrypoint[0])
	assert.Equal(t, df.build.Name, cp.From)
	assert.Equal(t, []string{df.releaseOut}, cp.SourcePaths)
}

// The image: minimal and pinned, non-root, /data as the SQLite volume,
// PORT exposed, a health check without a shell, SIGTERM to stop.
func TestDockerfileRunsTheGatewayAsTheImageShould(t *testing.T) {
	df := parseDockerfile(t)
	assert.Regexp(t, `^gcr\.io/distroless/static-debian\d+:nonroot@sha256:[0-9a-f]{64}$`, df.image.BaseName,
		"a distroless static base (CA certificates, a nonroot user), pinned by digest")

	assert.Equal(t, fmt.Sprintf("%d:%d", runtimeUID, runtimeUID), df.user, "USER uid:gid, numeric (Kubernetes' runAsNonRoot can check it)")
	assert.Equal(t, []string{"/gateway"}, df.entrypoint)
	assert.Equal(t, []string{"serve"}, df.cmd)
	assert.Equal(t, []string{"/gateway", "health"}, df.healthcheck, "HEALTHCHECK runs gateway health")
	assert.Positive(t, df.healthInterval)
	assert.Equal(t, "SIGTERM", df.stopSignal)

	port := defaultPort(t)
	assert.Equal(t, port, df.env["PORT"], "ENV PORT is the gateway's default")
	assert.Equal(t, []string{port}, df.expose, "EXPOSE PORT")
	assert.Equal(t, []string{"/data"}, df.volumes)
	assert.Equal(t, "/data", df.workdir)
	assert.Equal(t, "/data/gateway.db", df.env["DATABASE_URL"], "the SQLite file is on the volume")
	data, ok := df.copies["/data"]
	require.True(t, ok, "the image creates /data")
	assert.Equal(t, df.user, data.Chown, "/data belongs to the user that writes the SQLite file")

	var names []string
	for k := range df.env {
		names = append(names, k)
		assert.False(t, isSecret(k) && k != "DATABASE_URL", "the image must not carry the secret %s", k)
	}
	requireSettings(t, "the Dockerfile's ENV", names...)
}

// The Makefile's release recipe has the flags that make the image's
// binary what it must be; the release test then checks the binary itself.
func TestMakeReleaseIsStaticTrimmedAndStamped(t *testing.T) {
	out := runOut(t, root(t), "make", "--no-print-directory", "-n", "release", "VERSION=v9.8.7", "RELEASE_OUT=/tmp/x")
	assert.Contains(t, out, "CGO_ENABLED=0 ")
	assert.Contains(t, out, " -trimpath ")
	assert.Contains(t, out, "-X main.version=v9.8.7")
	assert.Contains(t, out, " ./cmd/gateway")
}
