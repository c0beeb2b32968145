package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/convgateway/gateway/adapters/store/redisstore"
	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
)

const usage = `usage:
  gateway [serve] [--config FILE]     run the gateway server (default)
  gateway send --to TO [--from FROM] (--body TEXT | --content-sid HX... [--vars JSON]) [--config FILE]
                                      send one message through the Twilio Messages API
  gateway health                      GET /health on 127.0.0.1:$PORT; exit 0 when it answers 200
  gateway version                     print the version

Settings, in rising priority: defaults, --config FILE (YAML), .env in the
working directory, environment variables. See configs/.env.example.
`

// run is the whole program: main only adds the signal context and the exit
// code. args are os.Args; getenv reads the environment; logs and command
// output go to stdout. It returns when the command is done or, for serve,
// when ctx is cancelled and the gateway has shut down.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd, rest := "serve", args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout)
	case "send":
		return send(ctx, rest, getenv, stdout)
	case "health":
		return health(ctx, rest, getenv, stdout)
	case "version":
		return printVersion(rest, stdout)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// flags returns a flag set for cmd with the common --config flag.
func flags(cmd string, stdout io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("gateway "+cmd, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprint(stdout, usage, "\nflags of gateway ", cmd, ":\n")
		fs.PrintDefaults()
	}
	config := fs.String("config", "", "YAML configuration `file` (see configs/gateway.example.yaml)")
	return fs, config
}

// serve runs the gateway until ctx is cancelled, then shuts it down within
// SHUTDOWN_DRAIN. Live calls still running at the deadline are cut and
// logged; that is not an error.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs, configFile := flags("serve", stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := configs.Load(configs.LoadOptions{ConfigFile: *configFile, Getenv: getenv})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	log.Info("gateway: starting", "version", version, "config", cfg)
	redisstore.RouteLogs(log.With("adapter", "redis"))

	gw, err := wire.Build(ctx, cfg, log)
	if err != nil {
		return err
	}
	// abort undoes Build when the gateway cannot be served: the use cases'
	// goroutines stop, then the stores close.
	abort := func(err error) error {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownDrain)
		defer cancel()
		return ports.JoinErrors(err, gw.Shutdown(stopCtx), gw.Close())
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		return abort(fmt.Errorf("listen: %w", err))
	}
	log.Info("gateway: listening", "addr", ln.Addr().String())
	var metrics *metricsServer
	if cfg.MetricsAddr != "" {
		if metrics, err = startMetrics(cfg.MetricsAddr, gw.MetricsHandler(), log); err != nil {
			return abort(ports.JoinErrors(err, ln.Close()))
		}
	}

	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	var serveErr error
	select {
	case serveErr = <-served:
		served = nil
	case <-ctx.Done():
	}

	log.Info("gateway: shutting down", "drain", cfg.ShutdownDrain.String())
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownDrain)
	defer cancel()
	if err := gw.Shutdown(drainCtx); err != nil {
		// The drain deadline cut what was still running; that is the
		// deadline's purpose, so it is logged, not returned.
		log.Warn("gateway: shutdown did not finish everything in time", "err", err)
	}
	if served != nil {
		serveErr = <-served
	}
	if metrics != nil {
		// Stopped last, so that the drain can be watched.
		serveErr = ports.JoinErrors(serveErr, metrics.stop())
	}
	if err := ports.JoinErrors(serveErr, gw.Close()); err != nil {
		return err
	}
	log.Info("gateway: stopped")
	return nil
}
