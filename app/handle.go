package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/convgateway/gateway/ports"
)

// Handle implements ports.Messages. It blocks for at most the inline
// timeout (plus the store calls that record the delivery), or until ctx is
// done; in both cases the answer is then delivered later through the
// MessageSender, as is an answer that is more than an inline reply may
// carry (the MessageSender's Limits: Handle then returns an empty Reply as
// soon as the answer is ready). Safe for concurrent use.
//
// Replies and errors:
//   - a duplicate delivery: an empty Reply;
//   - a repeat of a delivery whose owner stopped: the delivery is taken
//     over and answered as a new one;
//   - a repeat of a delivery another gateway alive owns: the answer if
//     the delivery is taken over (its owner's lease expired) in time, an
//     empty Reply otherwise (as soon as the owner has answered it, or at
//     the inline timeout: then this process goes on watching it for the
//     rest of the lease's ttl, and sends the answer if it takes it over);
//   - media or an empty body: a polite text, no assistant call;
//   - the store down: a polite "temporarily unavailable" text, error logged;
//   - after Shutdown has begun: a polite "send it again" text, and the
//     delivery is not recorded, so a retry elsewhere is processed;
//   - a missing MessageSid or From: an error wrapping ErrInvalidInput;
//   - ctx done while recording the delivery: an error wrapping ctx.Err().
//
// Assistant failures become a short apology; nothing internal reaches the
// user.
func (s *MessagesService) Handle(ctx context.Context, msg ports.InboundMessage) (ports.Reply, error) {
	start := time.Now()
	reply, outcome, err := s.handle(ctx, msg)
	if s.hooks.Handled != nil {
		s.hooks.Handled(outcome, time.Since(start))
	}
	return reply, err
}

func (s *MessagesService) handle(ctx context.Context, msg ports.InboundMessage) (ports.Reply, Outcome, error) {
	if msg.MessageSid == "" || msg.From == "" {
		return ports.Reply{}, OutcomeInvalid, fmt.Errorf("messages: handle: no MessageSid or From: %w", ports.ErrInvalidInput)
	}
	log := s.log.With("message_sid", msg.MessageSid, "user", maskUser(msg.From))
	if !s.enter() {
		log.Warn("message refused: shutting down")
		return textReply(textRestarting), OutcomeClosing, nil
	}
	defer s.wg.Done()

	// Every branch that answers the delivery (a polite text, or nothing for
	// a duplicate) marks the keys firstSeen recorded, off the webhook's
	// path, and then stops tracking it; a message's goroutine does both
	// for its message. A delivery whose request ended while it was being
	// recorded is answered by nobody (its repeat finds it owned by this
	// process, alive): its keys stay unmarked, so the sweep reports it
	// once this process has stopped.
	s.track(msg.MessageSid)
	first, keys, repeat, err := s.firstSeen(ctx, msg)
	claim := ports.ClaimTaken
	if err == nil && !first {
		claim, err = s.takeOver(ctx, repeat)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		s.untrack(msg.MessageSid)
		return ports.Reply{}, OutcomeGone, fmt.Errorf("messages: handle: %w", ctx.Err())
	case err != nil:
		log.Error("message not processed: idempotency store failed", "err", err)
		s.markLater(log, msg.MessageSid, keys)
		return textReply(textUnavailable), OutcomeUnavailable, nil
	case claim == ports.ClaimSettled || claim == ports.ClaimOwned:
		log.Info("duplicate delivery ignored")
		s.markLater(log, msg.MessageSid, keys)
		return ports.Reply{}, OutcomeDuplicate, nil
	case claim == ports.ClaimBusy:
		log.Info("repeat of a message another gateway took: waiting for it to answer, or to stop without answering", "key", keyKind(repeat))
		return s.wait(ctx, log, s.start(msg, log, keys, repeat))
	case !first:
		log.Warn("message taken over: the gateway that took it stopped before answering it", "key", keyKind(repeat))
		keys = allKeys(msg)
	}
	if text, ok := notice(msg); ok {
		logNotice(log, msg)
		s.markLater(log, msg.MessageSid, keys)
		return textReply(text), OutcomeUnsupported, nil
	}
	return s.wait(ctx, log, s.start(msg, log, keys, ""))
}

// wait waits for j's answer, for at most the inline timeout or until ctx
// is done, and makes Handle's result of it.
func (s *MessagesService) wait(ctx context.Context, log *slog.Logger, j *job) (ports.Reply, Outcome, error) {
	timer := time.NewTimer(s.inlineTimeout)
	defer timer.Stop()
	select {
	case parts := <-j.answer:
		if parts == nil {
			log.Info("answer too long for an inline reply: it is sent through the Messages API")
			return ports.Reply{}, OutcomeLater, nil
		}
		return ports.Reply{Messages: parts}, OutcomeInline, nil
	case <-j.duplicate:
		log.Info("duplicate delivery ignored")
		return ports.Reply{}, OutcomeDuplicate, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	close(j.gaveUp)
	if j.watch != "" && !j.taken.Load() {
		log.Info("repeat still waiting for the gateway that took the message: it is answered later if that gateway stopped")
		return ports.Reply{}, OutcomeLater, nil
	}
	log.Info("answer not ready in time: it will be sent later")
	return ports.Reply{}, OutcomeLater, nil
}

// enter counts a Handle call in, unless the service is shutting down.
func (s *MessagesService) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

// maskUser returns a loggable form of an address: its channel prefix and
// last four characters ("whatsapp:…4567"). Phone numbers are personal data.
func maskUser(addr string) string {
	prefix := ""
	if i := strings.IndexByte(addr, ':'); i >= 0 {
		prefix, addr = addr[:i+1], addr[i+1:]
	}
	r := []rune(addr)
	if len(r) <= 4 {
		return prefix + "…"
	}
	return prefix + "…" + string(r[len(r)-4:])
}
