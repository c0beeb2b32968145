// Command loadtest measures the gateway under many simultaneous phone
// calls. It starts the OpenAI Realtime simulator, runs the gateway (the
// real binary as its own process, so that its CPU and memory can be read
// apart from the load generator's), and places N calls through it, each
// streaming 20 ms frames in real time both ways with barge-ins. A share of
// the calls have a twin: the same frames, sent at the same moments, to the
// same simulator directly, without the gateway; each frame's time through
// the gateway minus its twin's time is the latency the gateway adds.
//
//	go build -o bin/gateway ./cmd/gateway
//	go run ./cmd/loadtest -gateway bin/gateway -calls 200 -duration 30s -out load.json
//
// It prints the figures and writes them to a JSON file: calls held, frames
// lost or reordered in each direction, the added latency per frame (p50,
// p99, max), the gateway's CPU seconds per call-minute and its resident
// memory per call.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	calls    int
	duration time.Duration
	ramp     time.Duration
	twins    int
	gateway  string
	out      string
	progress time.Duration
	profile  string
}

func parse(args []string, stdout io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.IntVar(&o.calls, "calls", 200, "concurrent `calls`")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long every call lasts")
	fs.DurationVar(&o.ramp, "ramp", 0, "how long placing the calls takes (0: 20 calls a second, at most 10s)")
	fs.IntVar(&o.twins, "twins", 100, "how many calls have a twin wired straight to the simulator, for the added latency (at most -calls)")
	fs.StringVar(&o.gateway, "gateway", "bin/gateway", "gateway `binary` to run as its own process; empty runs it inside this process (then CPU and memory are the whole process's)")
	fs.StringVar(&o.out, "out", "load.json", "JSON `file` for the figures")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "how often to print progress (0: never)")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of this process to `file` (with -gateway \"\" it includes the gateway)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.calls < 1 || o.calls > 65535:
		return o, fmt.Errorf("-calls must be between 1 and 65535")
	case o.duration < 2*time.Second || o.duration > 30*time.Minute:
		return o, fmt.Errorf("-duration must be between 2s and 30m")
	case o.twins < 0:
		return o, fmt.Errorf("-twins must not be negative")
	}
	o.twins = min(o.twins, o.calls)
	if o.ramp <= 0 {
		o.ramp = min(time.Duration(o.calls)*time.Second/20, 10*time.Second)
	}
	return o, nil
}

// run is the whole command: main adds only the signal context and the exit
// code.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parse(args, stdout)
	if err != nil {
		return err
	}
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, err := newRunner(ctx, o, stdout)
	if err != nil {
		return err
	}
	res, runErr := r.run(ctx)
	closeErr := r.close()
	if runErr != nil {
		return errors.Join(runErr, closeErr)
	}
	res.print(stdout)
	if err := res.write(o.out); err != nil {
		return errors.Join(err, closeErr)
	}
	fmt.Fprintf(stdout, "figures written to %s\n", o.out)
	return closeErr
}
