// Command gateway is the conversational gateway: it serves Twilio voice
// calls (Media Streams <-> OpenAI Realtime) and WhatsApp/SMS messages
// (Messaging webhook <-> OpenAI Responses or Assistants).
//
//	gateway [serve] [--config gateway.yaml]   run the server (default)
//	gateway send --to whatsapp:+1555... ...    send one message or template
//	gateway health                             GET /health on 127.0.0.1:$PORT (a container's HEALTHCHECK)
//	gateway version                            print the version
//
// Settings come from defaults, the --config YAML file, .env in the working
// directory and the environment (see configs/.env.example).
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
	err := run(ctx, os.Args, os.Getenv, os.Stdout)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0) // the usage was printed
	default:
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}
