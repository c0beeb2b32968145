package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
)

// Settings of the gateway under load.
const (
	loadAPIKey    = "sk-loadtest"
	loadAuthToken = "loadtest-auth-token"
)

// gateway is the gateway under load: its own process, or served inside
// this one.
type gateway interface {
	// URL is its base URL, also its PUBLIC_URL.
	URL() string
	// Usage returns the CPU time used so far and the resident memory now.
	Usage() (cpu time.Duration, rss int64, err error)
	// Describe says what runs the gateway.
	Describe() string
	// Stop shuts it down (SIGTERM for a process) and waits.
	Stop() error
}

// settings are the gateway's environment: the Realtime simulator at
// realtimeURL, a SQLite file in dir, quiet logs.
func settings(port int, realtimeURL, dir string) map[string]string {
	return map[string]string{
		"PORT":                strconv.Itoa(port),
		"PUBLIC_URL":          "http://127.0.0.1:" + strconv.Itoa(port),
		"OPENAI_API_KEY":      loadAPIKey,
		"OPENAI_BASE_URL":     "http://127.0.0.1:1/v1", // calls use only the Realtime API
		"OPENAI_REALTIME_URL": realtimeURL,
		"TWILIO_AUTH_TOKEN":   loadAuthToken,
		"DATABASE_URL":        filepath.Join(dir, "gateway.db"),
		"LOG_LEVEL":           "warn",
		"SHUTDOWN_DRAIN":      "5s",
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// process is the gateway binary running as a child process.
type process struct {
	cmd    *exec.Cmd
	url    string
	log    string
	exited chan error
}

// startProcess runs binary serve with the load's settings in a clean
// environment (not the user's .env or variables) and waits until /health
// answers.
func startProcess(ctx context.Context, binary, realtimeURL, dir string) (*process, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("gateway binary %s: %w (build it with: go build -o bin/gateway ./cmd/gateway)", binary, err)
	}
	abs, err := filepath.Abs(binary)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("free port: %w", err)
	}
	logPath := filepath.Join(dir, "gateway.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(abs, "serve")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range settings(port, realtimeURL, dir) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the gateway: %w", err)
	}
	p := &process{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), log: logPath, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	if err := waitHealthy(ctx, p.url, p.exited); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("%w; its log: %s", err, logPath)
	}
	return p, nil
}

// waitHealthy polls /health for up to 30 seconds.
func waitHealthy(ctx context.Context, base string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the gateway exited at start: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("the gateway did not answer /health: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *process) URL() string { return p.url }

func (p *process) Describe() string {
	return fmt.Sprintf("%s (its own process, pid %d; log %s)", p.cmd.Path, p.cmd.Process.Pid, p.log)
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times
// (100 on every Linux architecture Go supports).
const clockTicks = 100

func (p *process) Usage() (time.Duration, int64, error) {
	pid := p.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The fields after the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("unexpected /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, 0, errors.New("unexpected /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	rss, err := vmRSS(fmt.Sprintf("/proc/%d/status", pid))
	return time.Duration(utime+stime) * time.Second / clockTicks, rss, err
}

func (p *process) Stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-p.exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("the gateway exited with %v (log %s)", err, p.log)
		}
		return nil
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("the gateway did not stop within 20s of SIGTERM (log %s)", p.log)
	}
}

// vmRSS reads the resident set size from a /proc status file.
func vmRSS(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in " + path)
}

// inProcess is the gateway served inside the load generator (for tests of
// the load tool; its CPU and memory figures are the whole process's).
type inProcess struct {
	gw     *wire.Gateway
	url    string
	served chan error
}

func startInProcess(ctx context.Context, realtimeURL, dir string) (*inProcess, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	env := settings(port, realtimeURL, dir)
	cfg, err := configs.Load(configs.LoadOptions{Getenv: func(k string) string { return env[k] }, Dir: dir})
	if err != nil {
		ln.Close()
		return nil, err
	}
	gw, err := wire.Build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		ln.Close()
		return nil, err
	}
	p := &inProcess{gw: gw, url: "http://" + ln.Addr().String(), served: make(chan error, 1)}
	go func() { p.served <- gw.Serve(ln) }()
	return p, nil
}

func (p *inProcess) URL() string { return p.url }
func (p *inProcess) Describe() string {
	return "inside the load generator (CPU and memory are the whole process's)"
}

func (p *inProcess) Usage() (time.Duration, int64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, err
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rss, err := vmRSS("/proc/self/status")
	return cpu, rss, err
}

func (p *inProcess) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.gw.Shutdown(ctx)
	return errors.Join(err, <-p.served, p.gw.Close())
}
