package check

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostCACertificates is the host's CA bundle (Debian's ca-certificates),
// which the image's base provides at the same path.
const hostCACertificates = "/etc/ssl/certs/ca-certificates.crt"

// requireRoot skips the test unless it runs as root (it needs chroot and a
// switch of user), or fails it when the environment variable CI is "true":
// in CI the release test must run.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "the release test needs root (chroot and a switch to uid " + strconv.Itoa(runtimeUID) + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and " + msg)
	}
	t.Skip("skipping: " + msg)
}

// freePort returns a loopback port on which nothing listens now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	require.NoError(t, ln.Close())
	return port
}

// imageRoot lays out what the image holds, and nothing else: the binary
// where the Dockerfile COPYs it, the CA certificates of the distroless
// base, and /data owned as the Dockerfile's COPY --chown makes it.
func imageRoot(t testing.TB, df dockerfile, binary string) string {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	require.NoError(t, os.Mkdir(rootfs, 0o755))
	// t.TempDir is 0700; inside the chroot only rootfs' own mode counts.
	require.NoError(t, os.Chmod(rootfs, 0o755))

	bin := filepath.Join(rootfs, df.entrypoint[0])
	require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	require.NoError(t, copyFile(binary, bin, 0o755))

	certs := filepath.Join(rootfs, hostCACertificates)
	require.NoError(t, os.MkdirAll(filepath.Dir(certs), 0o755))
	require.NoError(t, copyFile(hostCACertificates, certs, 0o644))

	data := filepath.Join(rootfs, "data")
	require.NoError(t, os.Mkdir(data, 0o755))
	require.NoError(t, os.Chown(data, df.uid, df.gid))
	return rootfs
}

// imageCommand prepares args to run as the image runs its processes: with
// rootfs as its root, as the Dockerfile's USER, in its WORKDIR, with env
// only. It dies with the test.
func imageCommand(rootfs string, df dockerfile, env []string, args ...string) *exec.Cmd {
	cmd := &exec.Cmd{
		Path: args[0],
		Args: args,
		Env:  env,
		Dir:  df.workdir,
		SysProcAttr: &syscall.SysProcAttr{
			Chroot:     rootfs,
			Credential: &syscall.Credential{Uid: uint32(df.uid), Gid: uint32(df.gid), Groups: []uint32{}},
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	return cmd
}

// statusIDs returns the Uid: and Gid: lines of /proc/pid/status.
func statusIDs(t testing.TB, pid int) (uid, gid string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Uid":
			uid = strings.Join(strings.Fields(v), " ")
		case "Gid":
			gid = strings.Join(strings.Fields(v), " ")
		}
	}
	return uid, gid
}

// getStatus GETs url once and returns its status code, or 0 when there is
// no answer.
func getStatus(url string) int {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	res, err := client.Get(url)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// signals are the STOPSIGNAL names the test can send.
var signals = map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT}

// TestReleaseBinaryRunsAsTheImageRunsIt is the image, without Docker: the
// binary is built from the build context (.dockerignore applied, no .git)
// by the make line of the Dockerfile's build stage, then run as the image
// runs it, everything taken from the Dockerfile (ENTRYPOINT and CMD, USER,
// WORKDIR, ENV, HEALTHCHECK, STOPSIGNAL), in an empty root that holds only
// the binary, CA certificates and /data. It must serve the probe paths of
// the deployment files, pass its HEALTHCHECK, write its SQLite file on the
// volume as uid 65532, and stop cleanly on the STOPSIGNAL.
func TestReleaseBinaryRunsAsTheImageRunsIt(t *testing.T) {
	requireRoot(t)
	df := parseDockerfile(t)
	ctxDir := buildContext(t)
	version := "v0.0.0-check." + strconv.FormatInt(time.Now().UnixNano(), 36)
	binary := filepath.Join(t.TempDir(), "gateway")

	// The Dockerfile's own command, as the build stage's shell runs it,
	// with the build arguments BuildKit gives a build for this machine;
	// only the output goes elsewhere than /out (a later make variable on
	// the command line wins).
	build := exec.Command("sh", "-c", df.makeRun+" RELEASE_OUT='"+binary+"'")
	build.Dir = ctxDir
	build.Env = append(os.Environ(), "VERSION="+version, "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s, in the build context:\n%s", df.makeRun, out)

	// Static, without local paths, stamped.
	f, err := elf.Open(binary)
	require.NoError(t, err)
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a static binary has no program interpreter")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "a static binary needs no shared library")
	require.NoError(t, f.Close())
	info, err := buildinfo.ReadFile(binary)
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	assert.Equal(t, "0", settings["CGO_ENABLED"])
	assert.Equal(t, "true", settings["-trimpath"])
	// (-ldflags is not recorded with -trimpath: gateway version shows the stamp.)

	rootfs := imageRoot(t, df, binary)
	port := freePort(t)
	closed := "127.0.0.1:" + freePort(t) // nothing listens: OpenAI and Twilio are never called
	env := []string{}
	for k, v := range df.env {
		if k != "PORT" {
			env = append(env, k+"="+v)
		}
	}
	env = append(env,
		"PORT="+port, // as docker run -e PORT=… would: 5050 may be taken on this machine
		"OPENAI_API_KEY=sk-release-test-not-a-key",
		"TWILIO_AUTH_TOKEN=release-test-token",
		"OPENAI_BASE_URL=http://"+closed+"/v1",
		"TWILIO_API_BASE_URL=http://"+closed,
		"SHUTDOWN_DRAIN=5s",
	)

	// gateway version, in the image.
	versionCmd := imageCommand(rootfs, df, env, df.entrypoint[0], "version")
	vout, err := versionCmd.CombinedOutput()
	require.NoError(t, err, "%s", vout)
	assert.True(t, strings.HasPrefix(string(vout), "gateway "+version+" "), "gateway version prints the stamped version: %s", vout)

	// The log goes to a file, which the test reads while the gateway writes.
	logFile, err := os.Create(filepath.Join(t.TempDir(), "gateway.log"))
	require.NoError(t, err)
	defer logFile.Close()
	logs := func() string {
		b, err := os.ReadFile(logFile.Name())
		require.NoError(t, err)
		return string(b)
	}
	gw := imageCommand(rootfs, df, env, append(append([]string{}, df.entrypoint...), df.cmd...)...)
	gw.Stdout, gw.Stderr = logFile, logFile
	require.NoError(t, gw.Start())
	exited := make(chan error, 1)
	go func() { exited <- gw.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = gw.Process.Kill()
			<-exited
		}
	}()

	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing assertion
	for getStatus(base+healthPath) != http.StatusOK {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("the gateway exited before it answered %s: %v\n%s", healthPath, err, logs())
		case <-time.After(100 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "no answer on %s within a minute:\n%s", healthPath, logs())
	}

	uid, gid := statusIDs(t, gw.Process.Pid)
	want := strings.Repeat(strconv.Itoa(runtimeUID)+" ", 4)
	assert.Equal(t, strings.TrimSpace(want), uid, "real, effective, saved and filesystem uid")
	assert.Equal(t, strings.TrimSpace(want), gid)
	procRoot, err := os.Readlink(fmt.Sprintf("/proc/%d/root", gw.Process.Pid))
	require.NoError(t, err)
	assert.Equal(t, rootfs, procRoot, "the gateway runs inside the image's root")

	for _, p := range probePaths(t) {
		assert.Equal(t, http.StatusOK, getStatus(base+p), "GET %s (a probe of the deployment files)", p)
	}

	// The HEALTHCHECK, run as the runtime runs it: in the container.
	hc := imageCommand(rootfs, df, env, df.healthcheck...)
	hout, err := hc.CombinedOutput()
	require.NoError(t, err, "the HEALTHCHECK failed: %s", hout)
	assert.Contains(t, string(hout), "200 OK")

	db, err := os.Stat(filepath.Join(rootfs, df.env["DATABASE_URL"]))
	require.NoError(t, err, "the SQLite file is on the /data volume")
	assert.Equal(t, uint32(runtimeUID), db.Sys().(*syscall.Stat_t).Uid)

	sig, ok := signals[df.stopSignal]
	require.True(t, ok, "STOPSIGNAL %q", df.stopSignal)
	require.NoError(t, gw.Process.Signal(sig))
	select {
	case err := <-exited:
		stopped = true
		require.NoError(t, err, "exit status after %s:\n%s", df.stopSignal, logs())
	case <-time.After(time.Minute): // a hang guard far above SHUTDOWN_DRAIN=5s
		t.Fatalf("the gateway did not exit within a minute of %s:\n%s", df.stopSignal, logs())
	}
	assert.Contains(t, logs(), `"msg":"gateway: stopped"`)
	assert.Contains(t, logs(), `"version":"`+version+`"`, "the start line names the version")

	// Stopped, the HEALTHCHECK fails.
	var exit *exec.ExitError
	hout, err = imageCommand(rootfs, df, env, df.healthcheck...).CombinedOutput()
	require.True(t, errors.As(err, &exit), "want a failing HEALTHCHECK, got %v: %s", err, hout)
	assert.Equal(t, 1, exit.ExitCode())
}
