// Command callsim plays Twilio against a gateway running anywhere, so that
// a deployment can be tested before a real number points at it.
//
//	callsim --url https://gw.example.com --wav hello.wav --record heard.wav
//	callsim --url https://gw.example.com --whatsapp "Hi there"
//
// A call: it signs and POSTs /incoming-call as Twilio does, follows the
// TwiML (<Reject/>, or <Connect><Stream> with its parameters), opens the
// media stream with the signed upgrade and the stream token in the start
// event, streams the WAV (or silence) in real time, plays what the gateway
// sends with Twilio's mark and clear semantics, records it, reports the
// time to first audio, the marks and the clears, and hangs up.
// --whatsapp sends one signed messaging webhook and prints the reply. The
// auth token comes from --auth-token or TWILIO_AUTH_TOKEN and is never
// printed.
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
		fmt.Fprintln(os.Stderr, "callsim:", err)
		os.Exit(1)
	}
}
