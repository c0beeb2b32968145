package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/convgateway/gateway/ports"
)

// Serve implements ports.Calls: it waits for the start event, consumes its
// token, takes the pre-warmed speech session (or opens one) and bridges
// the call until either side ends it or ctx is done. A stream that ends
// before its start event is a quiet, normal end (nil). A missing, wrong,
// expired, replayed, replaced or other-call token closes the stream with a
// refusal (ports.EndRefused) before any speech session is used. A stream
// that has no speech session within OpenTimeout of its start event is
// ended as failed, which Twilio takes as a normal close, so that it plays
// the TwiML after <Connect>. It ends ch before it returns, and returns nil when the caller hung up,
// else an error that is already logged. Safe for concurrent use.
func (s *CallsService) Serve(ctx context.Context, ch ports.TelephonyChannel) error {
	start, err := s.awaitStart(ctx, ch)
	if err != nil || start.Type != ports.CallStarted {
		return err // no start event: awaitStart ended the stream and logged why
	}
	started := time.Now()
	callID := start.Call.CallID
	log := s.log.With("call_id", callID)
	token := start.Call.Params["token"]
	key := ports.TokenKey(token)

	if err := s.tokens.Consume(ctx, token, callID); err != nil {
		s.discard(key)
		reason, end := "invalid_token", ports.EndRefused
		switch {
		case errors.Is(err, ports.ErrTokenExpired):
			reason = "expired_token"
		case !errors.Is(err, ports.ErrTokenInvalid):
			reason, end = "token_store_unavailable", ports.EndFailed
		}
		return s.refuse(log, ch, reason, end, err)
	}

	// The caller hears silence until the session is there: the wait is
	// bounded from the start event, whatever the pre-warm is doing.
	octx, cancel := context.WithDeadline(ctx, started.Add(s.d.OpenTimeout))
	defer cancel()
	sess, prewarmed, err := s.openSession(octx, callID, log)
	if err != nil {
		return s.refuse(log, ch, "model_unavailable", ports.EndFailed, err)
	}
	c, err := newCall(s, ch, sess, log)
	if err != nil {
		_ = sess.Close()
		return s.refuse(log, ch, "audio_formats", ports.EndFailed, err)
	}
	if s.d.Hooks.CallStarted != nil {
		s.d.Hooks.CallStarted()
	}
	c.sum.CallID, c.sum.Prewarmed = callID, prewarmed
	c.info = start.Call
	c.started = started
	return c.run(ctx)
}

// awaitStart reads the stream until its start event, within StartTimeout.
// Anything before the start event is skipped. The timeout ends the stream
// rather than ending Recv's context, so that
// the channel keeps reading inline (see call). A stream that ends before
// its start event gives a zero event and nil; the timeout gives an error.
// Both are counted as refused ("no_start") and logged.
func (s *CallsService) awaitStart(ctx context.Context, ch ports.TelephonyChannel) (ports.CallEvent, error) {
	sctx, cancel := context.WithTimeout(ctx, s.d.StartTimeout)
	defer cancel()
	stop := context.AfterFunc(sctx, func() { _ = ch.End(ports.EndFailed) })
	defer stop()
	for {
		ev, err := ch.Recv(context.Background())
		if err == nil && ev.Type == ports.CallStarted && !stop() {
			err = sctx.Err() // the timeout struck as the start arrived: the stream is closing
		}
		if err != nil {
			_ = ch.End(ports.EndFailed)
			if s.d.Hooks.StreamRefused != nil {
				s.d.Hooks.StreamRefused("no_start")
			}
			if sctx.Err() != nil {
				s.log.Warn("media stream without a start event: closed", "err", sctx.Err())
				return ports.CallEvent{}, fmt.Errorf("calls: await start: %w", sctx.Err())
			}
			s.log.Info("media stream ended before its start event", "err", err)
			return ports.CallEvent{}, nil
		}
		if ev.Type == ports.CallStarted {
			return ev, nil
		}
		s.log.Debug("event before start skipped", "event", ev.Type.String())
	}
}

// refuse ends a stream that will not become a call, logs why and returns
// the error. The token is never logged.
func (s *CallsService) refuse(log *slog.Logger, ch ports.TelephonyChannel, reason string, end ports.EndReason, err error) error {
	if end == ports.EndRefused {
		log.Warn("media stream refused", "reason", reason, "err", err)
	} else {
		log.Error("media stream refused", "reason", reason, "err", err)
	}
	if s.d.Hooks.StreamRefused != nil {
		s.d.Hooks.StreamRefused(reason)
	}
	if cerr := ch.End(end); cerr != nil {
		log.Debug("end refused stream", "err", cerr)
	}
	return fmt.Errorf("calls: serve: %s: %w", reason, err)
}

// openSession returns the session pre-warmed for the call, waiting for it
// to finish opening if need be, or opens a new one when there is none or it
// failed. ctx bounds the whole wait.
func (s *CallsService) openSession(ctx context.Context, callID string, log *slog.Logger) (ports.SpeechSession, bool, error) {
	if p := s.take(callID); p != nil {
		select {
		case <-p.done:
		case <-ctx.Done():
			p.abandon()
			return nil, false, fmt.Errorf("calls: wait for the pre-warmed session: %w", ctx.Err())
		}
		if p.err == nil {
			return p.sess, true, nil
		}
		log.Warn("pre-warmed speech session failed: opening another", "err", p.err)
	}
	sess, err := s.speech.Open(ctx, s.config(callID))
	if err != nil {
		return nil, false, fmt.Errorf("calls: open speech session: %w", err)
	}
	return sess, false, nil
}

func (s *CallsService) config(callID string) ports.SpeechConfig {
	cfg := s.session
	cfg.CallID = callID
	return cfg
}
