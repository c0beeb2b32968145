package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

// realtime is the call on OpenAI Realtime: its simulator in scripted mode,
// played by the director. The model reports the caller's speech; the
// gateway clears the caller's audio and truncates the answer where the
// caller stopped hearing it.
type realtime struct {
	sim  *realtimesim.Server
	d    *director
	sess *realtimesim.Session
	cfg  realtimesim.Config
}

func newRealtime(script []turn, tl *timeline) *realtime {
	d := newDirector(script, tl)
	return &realtime{d: d, sim: realtimesim.New(realtimesim.Options{APIKey: demoAPIKey, OnAudio: d.hear, OnEvent: d.sent})}
}

func (m *realtime) name() string { return "Realtime" }

func (m *realtime) configure(cfg *configs.Config) {
	cfg.SpeechBackend = configs.SpeechRealtime
	cfg.OpenAIRealtimeURL = m.sim.URL()
}

func (m *realtime) session(ctx context.Context) (err error) {
	if m.sess, err = m.sim.Latest(ctx); err != nil {
		return err
	}
	m.cfg, err = m.sess.WaitConfig(ctx)
	return err
}

func (m *realtime) results() []ports.ToolResult { return m.sess.ToolResults() }

func (m *realtime) close() {
	m.d.close()
	m.sim.Close()
}

// check checks the call as it must go on Realtime: the common checks, one
// barge-in, and one truncation of the interrupted answer at no more than
// what the caller had heard and no more than the marks that came back.
func (m *realtime) check(r callRecord) (callReport, error) {
	st := m.d.state()
	if err := st.problem(); err != nil {
		return callReport{}, err
	}
	rep, err := checkRealtime(r, st.truncations, len(m.sess.Heard()))
	if err != nil {
		return rep, err
	}
	tl := m.d.tl
	tl.add(st.opened, "openai", "the gateway opens a Realtime session while it answers the webhook (pre-warm)")
	tl.add(st.configured, "openai", "the gateway configures the session: voice %s, %s, caller transcription by %s",
		m.cfg.Voice, m.cfg.TurnDetection, m.cfg.TranscriptionModel)
	tr := st.truncations[0]
	tl.add(tr.at, "openai", "receives conversation.item.truncate %s at audio_end_ms %d and confirms it (conversation.item.truncated)", tr.itemID, tr.endMs)
	return rep, nil
}

// checkRealtime is check on the records alone.
func checkRealtime(r callRecord, truncations []truncation, simTruncations int) (callReport, error) {
	rep, bad, err := checkTurns(r)
	if err != nil {
		return rep, err
	}
	for i, t := range r.script {
		if s := rep.turns[2*i+1]; s.Text != t.reply || s.SentMs != len(t.replyAudio)/8 {
			bad.add("turn %d: the gateway recorded %s %q (%d ms sent), the assistant said %q (%d ms)",
				2*i+2, s.Speaker, s.Text, s.SentMs, t.reply, len(t.replyAudio)/8)
		}
	}
	if len(bad) > 0 {
		return rep, errors.Join(bad...)
	}
	interrupted := rep.turns[1]
	countMarks(r, &rep, interrupted.SentMs)
	checkBargeIn(r, rep, &bad)
	if simTruncations != 1 || len(truncations) != 1 {
		return rep, errors.Join(append(bad, fmt.Errorf("the Realtime simulator received %d truncations and confirmed %d, want 1",
			simTruncations, len(truncations)))...)
	}
	tr := truncations[0]
	heardMs := r.clear.played / 8
	switch {
	case tr.itemID != interrupted.Utterance:
		bad.add("the gateway truncated %s, but the caller was hearing %s", tr.itemID, interrupted.Utterance)
	case tr.endMs <= 0 || tr.endMs > heardMs:
		bad.add("the gateway truncated %s at %d ms, but the caller had heard %d ms", tr.itemID, tr.endMs, heardMs)
	case tr.endMs >= interrupted.SentMs:
		bad.add("the truncation at %d ms cut nothing of the %d ms answer", tr.endMs, interrupted.SentMs)
	}
	if interrupted.HeardMs != tr.endMs {
		bad.add("the summary says the first answer was heard for %d ms (interrupted %v), the truncation says %d ms",
			interrupted.HeardMs, interrupted.Interrupted, tr.endMs)
	}
	if tr.endMs > rep.playedMarks*20 {
		bad.add("the truncation at %d ms is beyond the %d ms whose marks came back", tr.endMs, rep.playedMarks*20)
	}
	return rep, errors.Join(bad...)
}

func (m *realtime) explain(w io.Writer, r callRecord, rep callReport) {
	tr := m.d.state().truncations[0]
	fmt.Fprintf(w, "\n  Barge-in: the caller had heard %s of the first answer (%d of its %d chunks played, the last one cut by the clear).\n"+
		"  The gateway cleared the caller's audio and truncated %s at %s: the audio whose marks had come back\n"+
		"  played, never more than the caller heard; the %d marks still queued came back flushed.\n",
		ms(r.clear.played/8), rep.playedMarks, rep.chunks, tr.itemID, ms(tr.endMs), rep.flushed)
}
