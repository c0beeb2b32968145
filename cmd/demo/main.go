// Command demo is the offline demo (make demo): it runs the real gateway,
// built by wire.Build with its real OpenAI and Twilio adapters and a
// temporary SQLite file, against the simulators of test/sim on loopback,
// and plays out a phone call and a WhatsApp exchange with a slow answer.
// On the call, the caller talks over the assistant (a barge-in), asks to
// be texted the address (the model calls send_message; the gateway texts
// the caller through the Messages REST API), then says goodbye (the model
// calls end_call; the gateway completes the call through the Calls REST
// API once the goodbye has played). It needs no credentials and no
// network.
//
//	demo [--speech realtime|live] [--out caller.wav] [--dir DIR] [--inline-timeout 2s]
//
// --speech picks the voice model of the call (SPEECH_BACKEND): OpenAI
// Realtime, which reports the caller's speech and leaves the barge-in to
// the gateway (clear, then truncate), or GPT-Live, full duplex, which
// stops by itself when talked over while the gateway clears the little
// audio it had handed ahead of playback.
//
// It prints a timestamped transcript built from what the simulators
// recorded and what the gateway logged, writes the audio the simulated
// caller heard to a WAV file, and keeps the gateway's JSON log in a file.
// It exits non-zero, naming the step, when something does not happen as it
// should, so CI runs it as a smoke test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}
