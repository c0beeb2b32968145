package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// timeline collects what happened, from every side, with the time it
// happened, and prints it in order. Safe for concurrent use.
type timeline struct {
	mu     sync.Mutex
	events []event
}

// event is one line of the transcript.
type event struct {
	at   time.Time
	who  string // caller, twilio, gateway, openai, user
	text string
}

func (tl *timeline) add(at time.Time, who, format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, event{at: at, who: who, text: fmt.Sprintf(format, args...)})
}

// print writes the events in time order (ties in the order added), with
// times relative to t0, e.g. "  +1.240s  caller   hangs up".
func (tl *timeline) print(w io.Writer, t0 time.Time) {
	tl.mu.Lock()
	events := slices.Clone(tl.events)
	tl.mu.Unlock()
	slices.SortStableFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
	for _, e := range events {
		lines := strings.Split(e.text, "\n")
		fmt.Fprintf(w, "  %s  %-8s %s\n", rel(e.at, t0), e.who, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "  %8s  %-8s %s\n", "", "", l)
		}
	}
}

// rel is at relative to t0 as "+1.240s".
func rel(at, t0 time.Time) string {
	return fmt.Sprintf("%+.3fs", at.Sub(t0).Seconds())
}

// ms formats a duration in milliseconds as "1,480 ms".
func ms(n int) string {
	s := fmt.Sprint(n)
	if n >= 1000 {
		s = fmt.Sprintf("%d,%03d", n/1000, n%1000)
	}
	return s + " ms"
}

// quote puts text in double quotes, as it is (%q would escape the quotes
// inside).
func quote(text string) string { return `"` + text + `"` }

// dur formats a duration for the transcript: "3 ms", "1.520 s".
func dur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}

// gatewayLog is where the gateway's JSON log goes: a file (kept, its path
// printed) and a copy in memory that the demo reads its events from. Safe
// for concurrent use.
type gatewayLog struct {
	mu   sync.Mutex
	file *os.File
	buf  bytes.Buffer
}

func openGatewayLog(path string) (*gatewayLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create the gateway's log file: %w", err)
	}
	return &gatewayLog{file: f}, nil
}

func (l *gatewayLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.file.Write(p)
}

func (l *gatewayLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.file.Close(); err != nil {
		return fmt.Errorf("close the gateway's log: %w", err)
	}
	return nil
}

// logLine is one parsed line of the gateway's log.
type logLine struct {
	Time  time.Time
	Level string
	Msg   string
	Attrs map[string]any
}

// lines parses the log so far.
func (l *gatewayLog) lines() []logLine {
	l.mu.Lock()
	data := bytes.Clone(l.buf.Bytes())
	l.mu.Unlock()
	var out []logLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var attrs map[string]any
		if json.Unmarshal(sc.Bytes(), &attrs) != nil {
			continue
		}
		line := logLine{Attrs: attrs}
		line.Msg, _ = attrs["msg"].(string)
		line.Level, _ = attrs["level"].(string)
		if ts, ok := attrs["time"].(string); ok {
			line.Time, _ = time.Parse(time.RFC3339Nano, ts)
		}
		out = append(out, line)
	}
	return out
}

func (l *gatewayLog) count() int { return len(l.lines()) }

// problems returns the warnings and errors logged, as "LEVEL msg".
func (l *gatewayLog) problems() []string {
	var out []string
	for _, line := range l.lines() {
		if line.Level == "WARN" || line.Level == "ERROR" {
			out = append(out, line.Level+" "+line.Msg)
		}
	}
	return out
}

// find returns the first line with message msg whose attribute key is
// value (any line with msg when key is empty).
func (l *gatewayLog) find(msg, key, value string) (logLine, bool) {
	for _, line := range l.lines() {
		if line.Msg != msg {
			continue
		}
		if key == "" || fmt.Sprint(line.Attrs[key]) == value {
			return line, true
		}
	}
	return logLine{}, false
}

// wait waits until find finds the line, or ctx ends.
func (l *gatewayLog) wait(ctx context.Context, msg, key, value string) (logLine, error) {
	for {
		if line, ok := l.find(msg, key, value); ok {
			return line, nil
		}
		select {
		case <-ctx.Done():
			return logLine{}, fmt.Errorf("the gateway did not log %q: %w", msg, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// until polls cond every few milliseconds until it holds, or ctx ends.
func until(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}
