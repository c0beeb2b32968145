//go:build pprof

package main

// Built with -tags pprof, the gateway serves Go's profiler on loopback
// (PPROF_ADDR, default 127.0.0.1:6060) for performance work: for example
// go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10
// while make load runs. It is never in a normal build.

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

func init() {
	addr := os.Getenv("PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof: serve", "addr", addr, "err", err)
		}
	}()
}
