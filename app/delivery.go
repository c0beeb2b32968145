package app

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/convgateway/gateway/ports"
)

// deliver hands parts to the waiting Handle, or, when Handle stopped waiting
// or the answer is more than an inline reply may carry (the sender's Limits),
// sends them through the MessageSender in order, PartInterval apart (Handle
// is then told to answer the webhook with nothing, so that all parts go one
// way). A part that cannot be sent is logged with what remains undelivered;
// the later parts are not sent, so that the user never receives an answer
// with a hole. The sender retries what the provider did not take (rate
// limited, unreachable); a send that failed otherwise is not retried: when
// its outcome is unknown (ports.ErrOutcomeUnknown) the message may have gone
// out, and a repeated answer is worse than a logged one. That case is logged
// as such, not as an answer not delivered.
//
// deliver reports whether the delivery is done with: the answer handed
// over or sent, or a send failed or ended unknown (logged here with the
// MessageSid, so that marking the delivery answered spares the log a
// second, misleading "the gateway stopped" report). It reports false when
// ctx ended first.
func (s *MessagesService) deliver(ctx context.Context, j *job, parts []string) bool {
	inline := parts
	if len(parts) > s.limits.MaxReplyMessages || size(parts) > s.limits.MaxReplyBytes {
		inline = nil
	}
	select {
	case j.answer <- inline:
		if inline != nil {
			return true
		}
	case <-j.gaveUp:
	case <-ctx.Done():
		s.dropped(j, chars(parts), ctx.Err())
		return false
	}
	var sent time.Time
	for i, p := range parts {
		if i > 0 && s.partInterval > 0 {
			select {
			case <-time.After(time.Until(sent.Add(s.partInterval))):
			case <-ctx.Done():
				s.dropped(j, chars(parts[i:]), ctx.Err())
				return false
			}
		}
		sent = time.Now()
		_, err := s.sender.Send(ctx, ports.OutboundMessage{To: j.msg.From, From: j.msg.To, Body: p})
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			s.dropped(j, chars(parts[i:]), err)
			return false
		case errors.Is(err, ports.ErrOutcomeUnknown):
			j.log.Error("answer may or may not have been delivered: the send's outcome is unknown",
				"outcome", "unknown", "part", i+1, "parts", len(parts),
				"unknown_chars", chars(parts[i:i+1]), "undelivered_chars", chars(parts[i+1:]), "err", err)
		default:
			j.log.Error("answer not delivered: send failed",
				"outcome", "failed", "part", i+1, "parts", len(parts), "undelivered_chars", chars(parts[i:]), "err", err)
		}
		return true
	}
	j.log.Info("answer sent later", "parts", len(parts))
	return true
}

// dropped logs an answer abandoned because the service stopped: the
// operator can find the exchange by its MessageSid. The text itself is not
// logged (it is personal data); its length is.
func (s *MessagesService) dropped(j *job, undeliveredChars int, err error) {
	j.log.Error("answer not delivered: shutting down", "undelivered_chars", undeliveredChars, "err", err)
}

// size is the number of bytes in parts.
func size(parts []string) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// chars is the number of characters (runes) in parts.
func chars(parts []string) int {
	n := 0
	for _, p := range parts {
		n += utf8.RuneCountInString(p)
	}
	return n
}
