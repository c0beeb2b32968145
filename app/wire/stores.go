package wire

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convgateway/gateway/adapters/store/memory"
	"github.com/convgateway/gateway/adapters/store/postgres"
	"github.com/convgateway/gateway/adapters/store/redisstore"
	"github.com/convgateway/gateway/adapters/store/sqlite"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
)

// storeStartTimeout bounds the first contact with PostgreSQL and Redis
// while the gateway starts. A store that has not answered by then is
// reported and the gateway starts without it.
const storeStartTimeout = 10 * time.Second

// The names of the stores' /ready checks.
const (
	checkThreads = "threads"
	checkTokens  = "tokens"
)

// openStores opens the thread and token stores that were not given as
// Options, recording how to close them, and makes the /ready checks of
// all of them. A PostgreSQL or Redis store that does not answer is logged,
// not an error.
func (g *Gateway) openStores(ctx context.Context, cfg configs.Config, log *slog.Logger, p *parts) error {
	threads := &storeCheck{name: "the thread store", log: log} // named after the adapter below
	tokens := &storeCheck{name: "the token store", log: log}
	var servers []*storeCheck // the checks of stores whose server may be down
	if p.threads == nil {
		if cfg.Postgres() {
			threads.name = "the PostgreSQL thread store"
			servers = append(servers, threads)
			var opts []postgres.Option
			if cfg.DatabaseSchema != "" {
				opts = append(opts, postgres.WithSchema(cfg.DatabaseSchema))
			}
			s, err := postgres.OpenLazy(cfg.DatabaseURL, log.With("adapter", "postgres"), opts...)
			if err != nil {
				return fmt.Errorf("wire: open the PostgreSQL thread store: %w", err)
			}
			p.threads = s
			g.closers = append(g.closers, s.Close)
		} else {
			threads.name = "the SQLite thread store"
			s, err := sqlite.Open(ctx, cfg.DatabaseURL, log.With("adapter", "sqlite"))
			if err != nil {
				return fmt.Errorf("wire: open the SQLite thread store: %w", err)
			}
			p.threads = s
			g.closers = append(g.closers, s.Close)
		}
	}
	if p.tokens == nil {
		if cfg.RedisURL != "" {
			tokens.name = "the Redis token store"
			servers = append(servers, tokens)
			s, err := redisstore.NewLazy(cfg.RedisURL, redisstore.WithKeyPrefix(cfg.RedisKeyPrefix))
			if err != nil {
				return fmt.Errorf("wire: open the Redis token store: %w", err)
			}
			p.tokens = s
			g.closers = append(g.closers, s.Close)
		} else {
			tokens.name = "the in-memory token store"
			p.tokens = memory.NewTokenStore(nil)
		}
	}
	threads.store, tokens.store = p.threads, p.tokens
	g.checks = map[string]ports.Pinger{checkThreads: threads, checkTokens: tokens}
	checkAtStart(ctx, servers)
	return nil
}

// checkAtStart pings the stores at once, each within storeStartTimeout,
// and logs each that does not answer: the gateway starts without it.
func checkAtStart(ctx context.Context, stores []*storeCheck) {
	ctx, cancel := context.WithTimeout(ctx, storeStartTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range stores {
		wg.Go(func() {
			if err := c.store.Ping(ctx); err != nil {
				c.down.Store(true)
				c.log.Error("wire: "+c.name+" is unavailable at start; the gateway starts without it, "+
					"/ready answers 503 and users are answered politely until it is back",
					"store", c.name, "err", err)
			}
		})
	}
	wg.Wait()
}

// storeCheck is a store's /ready check. It pings the store and logs when
// the store stops answering and when it answers again, naming it, so that
// the log tells which store an outage was about and when it ended.
type storeCheck struct {
	name  string // "the Redis token store"
	store ports.Pinger
	log   *slog.Logger
	down  atomic.Bool
}

// Ping implements ports.Pinger.
func (c *storeCheck) Ping(ctx context.Context) error {
	err := c.store.Ping(ctx)
	switch {
	case err == nil && c.down.CompareAndSwap(true, false):
		c.log.Info("wire: "+c.name+" answers again", "store", c.name)
	case err != nil && ctx.Err() == nil && c.down.CompareAndSwap(false, true):
		c.log.Error("wire: "+c.name+" stopped answering", "store", c.name, "err", err)
	}
	return err
}
