package app

import (
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convgateway/gateway/domain"
)

// finish logs the call's summary and reports it to the hooks. The
// summary is bounded (MaxSummaryTurns, MaxTurnText, domain.MaxDigits); the
// keys pressed are logged only with LogDigits.
func (c *call) finish(end *ending) {
	c.sum.Duration = time.Since(c.started)
	c.sum.EndReason = end.reason
	c.sum.Turns, c.sum.TurnsOmitted = summaryTurns(c.conv.Turns())
	c.sum.BargeIns = c.conv.BargeIns()
	c.sum.Digits, c.sum.DigitCount = c.conv.Digits(), c.conv.DigitCount()
	c.sum.FramesSkipped = c.ch.Skipped()
	c.sum.CallerEventsSkipped = c.skippedCaller
	c.sum.Tools = c.tools.uses()
	if c.player != nil {
		handed, withdrawn := c.player.out()
		c.sum.FramesOut += handed
		c.sum.FramesDropped += withdrawn
	}
	c.qmu.Lock()
	c.sum.CallerEventsDropped = c.dropped
	c.qmu.Unlock()

	attrs := []any{
		"end_reason", end.reason,
		"duration", c.sum.Duration.Round(time.Millisecond).String(),
		"prewarmed", c.sum.Prewarmed,
		"first_audio_ms", c.sum.FirstAudio.Milliseconds(),
		"turns", turnLogs(c.sum.Turns),
		"turns_omitted", c.sum.TurnsOmitted,
		"barge_ins", c.sum.BargeIns,
		"digits_count", c.sum.DigitCount,
	}
	if c.svc.d.LogDigits {
		attrs = append(attrs, "digits", c.sum.Digits)
	}
	attrs = append(attrs,
		slog.Group("usage", "input_tokens", c.sum.Usage.InputTokens,
			"output_tokens", c.sum.Usage.OutputTokens, "total_tokens", c.sum.Usage.TotalTokens,
			"seconds", c.sum.Usage.Duration.Seconds()),
		"frames_in", c.sum.FramesIn,
		"frames_out", c.sum.FramesOut,
		"frames_dropped", c.sum.FramesDropped,
		"frames_skipped", c.sum.FramesSkipped,
		"model_errors", c.sum.ModelErrors,
		"caller_events_skipped", c.sum.CallerEventsSkipped,
		"caller_events_dropped", c.sum.CallerEventsDropped,
	)
	if len(c.sum.Tools) > 0 {
		attrs = append(attrs, "tools", c.sum.Tools)
	}
	if end.normal {
		c.log.Info("call ended", attrs...)
	} else {
		c.log.Warn("call ended", append(attrs, "err", end.err)...)
	}
	if h := c.svc.d.Hooks.CallEnded; h != nil {
		h(c.sum)
	}
}

// summaryTurns returns the last MaxSummaryTurns of turns, their texts and
// utterance names clipped, and how many earlier turns it left out.
func summaryTurns(turns []domain.Turn) ([]domain.Turn, int) {
	omitted := max(0, len(turns)-MaxSummaryTurns)
	turns = turns[omitted:]
	for i := range turns {
		turns[i].Text = clip(turns[i].Text, MaxTurnText)
		turns[i].Utterance = clip(turns[i].Utterance, maxUtterance)
	}
	return turns, omitted
}

// clip makes s safe and short for a log line: control characters become
// spaces, invalid UTF-8 the replacement character, and a result longer
// than n bytes is cut at a character boundary to end with "…" within n
// bytes. Its JSON form is then at most about twice n bytes.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// turnLog is a turn as the call summary logs it.
type turnLog struct {
	Speaker     string `json:"speaker"`
	Utterance   string `json:"utterance,omitempty"`
	Text        string `json:"text,omitempty"`
	StartMs     int64  `json:"start_ms"`
	HeardMs     int    `json:"heard_ms,omitempty"`
	SentMs      int    `json:"sent_ms,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

func turnLogs(turns []domain.Turn) []turnLog {
	out := make([]turnLog, len(turns))
	for i, t := range turns {
		out[i] = turnLog{Speaker: t.Speaker.String(), Utterance: t.Utterance, Text: t.Text, StartMs: t.StartMs,
			HeardMs: t.HeardMs, SentMs: t.SentMs, Interrupted: t.Interrupted}
	}
	return out
}
