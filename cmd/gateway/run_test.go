package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The process tests re-run this test binary as the real command.
	if os.Getenv("GATEWAY_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// validEnv is a complete configuration that needs no network: the OpenAI
// and Twilio base URLs point at a closed loopback port and are never called
// by these tests.
func validEnv() map[string]string {
	return map[string]string{
		"OPENAI_API_KEY":      "sk-test-not-a-real-key",
		"TWILIO_AUTH_TOKEN":   "test-auth-token",
		"PORT":                "0",
		"OPENAI_BASE_URL":     "http://127.0.0.1:1/v1",
		"TWILIO_API_BASE_URL": "http://127.0.0.1:1",
		"SHUTDOWN_DRAIN":      "5s",
	}
}

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// listenAddrs reads JSON log lines from r and sends the address of the
// line whose message is msgs[i] on the i-th channel; it keeps draining r
// until EOF so the writer never blocks.
func listenAddrs(t *testing.T, r io.Reader, msgs ...string) []chan string {
	t.Helper()
	addrs := make([]chan string, len(msgs))
	for i := range addrs {
		addrs[i] = make(chan string, 1)
	}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			for i, msg := range msgs {
				if line.Msg == msg {
					addrs[i] <- line.Addr
				}
			}
		}
	}()
	return addrs
}

func waitAddr(t *testing.T, addr <-chan string, done <-chan error) string {
	t.Helper()
	select {
	case a := <-addr:
		return strings.Replace(a, "[::]", "127.0.0.1", 1)
	case err := <-done:
		t.Fatalf("the gateway stopped before listening: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the gateway did not start listening")
	}
	return ""
}

func get(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// runGateway runs the gateway with env in the background until stop, and
// returns the addresses of the log lines msgs ("gateway: listening" when
// none), as base URLs. stop cancels run and requires it to return nil.
func runGateway(t *testing.T, env map[string]string, msgs ...string) (bases []string, stop func()) {
	t.Helper()
	if len(msgs) == 0 {
		msgs = []string{"gateway: listening"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	addrs := listenAddrs(t, pr, msgs...)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"gateway"}, getenv(env), pw)
		pw.Close()
	}()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(time.Minute): // a hang guard, not a timing assertion
			t.Fatal("run did not return after its context was cancelled")
		}
	}
	t.Cleanup(stop)
	for _, addr := range addrs {
		bases = append(bases, "http://"+waitAddr(t, addr, done))
	}
	return bases, stop
}

func TestRunServesHealthAndStopsOnCancel(t *testing.T) {
	t.Chdir(t.TempDir()) // the SQLite file (./data/gateway.db) and .env lookup
	bases, stop := runGateway(t, validEnv())
	base := bases[0]
	assert.Equal(t, http.StatusOK, get(t, base+"/health"))
	assert.Equal(t, http.StatusOK, get(t, base+"/ready"), "the SQLite and in-memory stores are reachable")
	assert.Equal(t, http.StatusOK, get(t, base+"/metrics"), "without METRICS_ADDR the metrics are on PORT")
	_, err := os.Stat("data/gateway.db")
	assert.NoError(t, err, "the default SQLite database is created in the working directory")

	stop()
	_, err = http.Get(base + "/health")
	assert.Error(t, err, "the listener is closed")
}

func TestRunServesMetricsOnMetricsAddrOnly(t *testing.T) {
	t.Chdir(t.TempDir())
	env := validEnv()
	env["METRICS_ADDR"] = "127.0.0.1:0"
	bases, stop := runGateway(t, env, "gateway: listening", "gateway: metrics listening")
	public, private := bases[0], bases[1]
	assert.Equal(t, http.StatusNotFound, get(t, public+"/metrics"), "the public port must not serve the metrics")
	assert.Equal(t, http.StatusOK, get(t, public+"/health"))
	assert.Equal(t, http.StatusNotFound, get(t, private+"/health"), "the metrics listener serves /metrics alone")

	res, err := http.Get(private + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), "gateway_calls_active 0")

	stop()
	_, err = http.Get(private + "/metrics")
	assert.Error(t, err, "the metrics listener is closed with the gateway")
}

// A gateway that cannot listen stops what Build started (goleak checks the
// use cases' goroutines are gone) and says which listener failed.
func TestRunFailsWhenAPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer taken.Close()
	_, port, err := net.SplitHostPort(taken.Addr().String())
	require.NoError(t, err)

	for _, tt := range []struct{ name, key, value, want string }{
		{"PORT", "PORT", port, "listen:"},
		{"METRICS_ADDR", "METRICS_ADDR", "127.0.0.1:" + port, "listen for metrics (METRICS_ADDR)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			env := validEnv()
			env[tt.key] = tt.value
			var out strings.Builder
			err := run(context.Background(), []string{"gateway"}, getenv(env), &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "address already in use")
		})
	}
}

func TestRunNamesEveryMissingSetting(t *testing.T) {
	t.Chdir(t.TempDir())
	env := validEnv()
	delete(env, "OPENAI_API_KEY")
	delete(env, "TWILIO_AUTH_TOKEN")
	var out strings.Builder
	err := run(context.Background(), []string{"gateway"}, getenv(env), &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "OPENAI_API_KEY is required")
	assert.Contains(t, err.Error(), "TWILIO_AUTH_TOKEN is required")
}

// A mistyped DATABASE_URL stops the start with a clear error: it does not
// become a SQLite file named after the URL, and its password appears
// nowhere (neither in the error nor in the log nor on disk).
func TestRunRejectsADatabaseURLOfUnknownScheme(t *testing.T) {
	for _, url := range []string{"postgress://gw:Secret-pw@db:5432/gw", "mysql://gw:Secret-pw@db/gw", "garbage"} {
		t.Run(url, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			env := validEnv()
			env["DATABASE_URL"] = url
			// A gateway that starts all the same serves until the guard
			// ends it, and returns nil.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out strings.Builder
			err := run(ctx, []string{"gateway"}, getenv(env), &out)
			require.Error(t, err, "the gateway must not start")
			assert.Contains(t, err.Error(), "DATABASE_URL")
			assert.NotContains(t, err.Error()+out.String(), "Secret-pw")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "no file or directory is created")
		})
	}
}

func TestRunRejectsUnknownCommand(t *testing.T) {
	err := run(context.Background(), []string{"gateway", "serv"}, getenv(nil), io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown command "serv"`)
}

// command prepares this test binary to run as the gateway with only env
// (no inherited settings), in a fresh working directory.
func command(t *testing.T, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"GATEWAY_TEST_RUN_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + cmd.Dir}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

func TestProcessExitsNonZeroNamingBothMissingSettings(t *testing.T) {
	env := validEnv()
	delete(env, "OPENAI_API_KEY")
	delete(env, "TWILIO_AUTH_TOKEN")
	cmd := command(t, env)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "want a non-zero exit, got %v", err)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, stderr.String(), "OPENAI_API_KEY is required")
	assert.Contains(t, stderr.String(), "TWILIO_AUTH_TOKEN is required")
}

func TestProcessStopsCleanlyOnSIGTERM(t *testing.T) {
	cmd := command(t, validEnv())
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	var stderr strings.Builder
	cmd.Stderr = &stderr
	addr := listenAddrs(t, pr, "gateway: listening")[0]
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() {
		done <- cmd.Wait()
		pw.Close()
	}()

	base := "http://" + waitAddr(t, addr, done)
	assert.Equal(t, http.StatusOK, get(t, base+"/health"))

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGTERM; stderr: %s", stderr.String())
	case <-time.After(time.Minute): // a hang guard, not a timing assertion
		_ = cmd.Process.Kill()
		t.Fatal("the gateway did not exit after SIGTERM")
	}
}
