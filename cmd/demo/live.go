package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/convgateway/gateway/app"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/livesim"
)

// live is the call on GPT-Live: its simulator in its Auto mode, which
// hears the caller's turns (speech, then 400 ms of quiet), transcribes
// them and answers each with the script's reply, streaming its audio at
// twice real time. It is full duplex: when the caller talks over it, it
// yields once it has heard about a word (Auto.Yield): it stops by itself,
// with no event to say so, and transcribes that word. The gateway hands
// its audio to the caller only a small lead ahead of playback and holds
// the rest; when the caller's words take the turn, it clears the lead and
// drops what it holds. The demo watches what the simulator sends
// (OnEvent).
type live struct {
	sim    *livesim.Server
	tl     *timeline
	script []turn
	sess   *livesim.Session

	ctx    context.Context // the tool calls'
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	started  time.Time    // session.started
	said     []spoken     // the model's utterances, in order
	heard    []heardWords // the caller's words it transcribed, in order
	speaking bool         // an utterance is under way (no usage since its audio)
	lastWord time.Time    // the last session.input_transcript.delta
	errs     []string
}

// spoken is an utterance of the model, as the simulator sent it.
type spoken struct {
	began, ended time.Time // its first audio delta, the usage that ends it
	deltas       int       // audio deltas of 20 ms
	text         string    // its transcript deltas
}

// heardWords are caller words the model transcribed at once: a run of
// session.input_transcript.delta events less than burst apart. (The
// simulator sends the words it transcribes back to back; the words it
// yields to come at least the end of a turn before the rest.)
type heardWords struct {
	at   time.Time
	text string
	// turn counts the utterances the model had begun: words with the same
	// count are of one caller turn.
	turn int
	// over is set on words transcribed before the caller's turn ended:
	// the model yielded to them while it spoke.
	over bool
}

// burst is the longest gap between two transcript deltas of one run.
const burst = 100 * time.Millisecond

// yieldMs is how much of the caller talking over it GPT-Live hears before
// it yields the turn: about a word.
const yieldMs = 240

// newLive starts the simulator. A turn whose tool is called first gets no
// words of its own in Auto mode: the demo makes the model call the tool
// once it has heard the caller, and the model says the tool's result
// (livesim.SaysResult) with that turn's reply audio. A tool called after
// the reply is called once the reply has gone out.
func newLive(script []turn, tl *timeline) *live {
	m := &live{tl: tl, script: script}
	auto := &livesim.Auto{ChunkEvery: 10 * time.Millisecond, Yield: yieldMs * time.Millisecond}
	for _, t := range script {
		if t.act != nil && t.act.first {
			auto.Turns = append(auto.Turns, livesim.Turn{Caller: t.caller})
			auto.Reply = t.replyAudio
			continue
		}
		auto.Turns = append(auto.Turns, livesim.Turn{Caller: t.caller, Reply: t.replyAudio, Transcript: t.reply})
	}
	m.sim = livesim.New(livesim.Options{APIKey: demoAPIKey, Auto: auto, OnEvent: m.sent, Gap: resultGap})
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.wg.Add(1)
	go m.act()
	return m
}

// resultGap is how long GPT-Live pauses before saying a tool's result.
const resultGap = 200 * time.Millisecond

// act makes the model call the script's tools when their turns come, and
// notes on the timeline when their results come back.
func (m *live) act() {
	defer m.wg.Done()
	sess, err := m.sim.Latest(m.ctx)
	if err != nil {
		return
	}
	for i, t := range m.script {
		if t.act == nil {
			continue
		}
		err := until(m.ctx, "the turn of "+t.act.call.Name, func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			if t.act.first {
				return len(m.heard) > 0 && m.heard[len(m.heard)-1].text == t.caller && time.Since(m.lastWord) > burst
			}
			return len(m.said) > i && !m.said[i].ended.IsZero()
		})
		if err != nil {
			return
		}
		at := time.Now()
		if err := sess.CallTool(m.ctx, t.act.call); err != nil {
			m.fail(err)
			return
		}
		m.tl.add(at, "openai", "calls %s through its Responses delegation (response.event: a function_call item in\nresponse.output_item.done, %s): %s",
			t.act.call.Name, t.act.call.ID, t.act.call.Arguments)
		if t.act.call.Name == app.ToolEndCall {
			continue
		}
		if err := until(m.ctx, "the result of "+t.act.call.Name, func() bool {
			return len(sess.ToolResults()) > 0 && sess.Creates() > 0
		}); err != nil {
			return
		}
		m.tl.add(time.Now(), "openai", "receives the result (response.item.create of a function_call_output %q), then response.create",
			sess.ToolResults()[0].Output)
	}
}

func (m *live) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errs = append(m.errs, "the demo could not make the model call a tool: "+err.Error())
}

func (m *live) name() string { return "GPT-Live" }

func (m *live) configure(cfg *configs.Config) {
	cfg.SpeechBackend = configs.SpeechLive
	cfg.OpenAILiveURL = m.sim.URL()
}

func (m *live) session(ctx context.Context) (err error) {
	if m.sess, err = m.sim.Latest(ctx); err != nil {
		return err
	}
	_, err = m.sess.WaitStarted(ctx)
	return err
}

func (m *live) results() []ports.ToolResult { return m.sess.ToolResults() }

func (m *live) close() {
	m.cancel()
	m.wg.Wait()
	m.sim.Close()
}

var liveAudioDelta = []byte(`{"type":"session.output_audio.delta"`)

// sent is the simulator's OnEvent hook: every server event it sends.
func (m *live) sent(b []byte) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if bytes.HasPrefix(b, liveAudioDelta) {
		if !m.speaking {
			m.speaking = true
			m.said = append(m.said, spoken{began: now})
		}
		m.said[len(m.said)-1].deltas++
		return
	}
	var e simEvent
	if json.Unmarshal(b, &e) != nil {
		return
	}
	switch e.Type {
	case "session.started":
		m.started = now
	case "session.output_transcript.delta":
		if n := len(m.said); n > 0 {
			m.said[n-1].text += e.Delta
		}
	case "session.input_transcript.delta":
		if now.Sub(m.lastWord) > burst || len(m.heard) == 0 {
			m.heard = append(m.heard, heardWords{at: now, turn: len(m.said)})
		}
		m.lastWord = now
		m.heard[len(m.heard)-1].text += e.Delta
	case "session.usage.updated":
		if m.speaking {
			m.speaking = false
			m.said[len(m.said)-1].ended = now
		}
	case "error":
		m.errs = append(m.errs, e.Error.String())
	}
}

// liveRecord is what the GPT-Live simulator recorded of the call.
type liveRecord struct {
	said     []spoken
	heard    []heardWords
	commands []string // the types of the client events but audio, in order
	errs     []string
}

func (m *live) record() liveRecord {
	m.mu.Lock()
	r := liveRecord{said: append([]spoken(nil), m.said...), heard: append([]heardWords(nil), m.heard...),
		errs: append([]string(nil), m.errs...)}
	m.mu.Unlock()
	for i := range r.heard {
		r.heard[i].over = i+1 < len(r.heard) && r.heard[i+1].turn == r.heard[i].turn
	}
	for _, c := range m.sess.Commands() {
		var e struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(c, &e)
		r.commands = append(r.commands, e.Type)
	}
	return r
}

func (m *live) check(r callRecord) (callReport, error) {
	lr := m.record()
	rep, err := checkLive(r, lr)
	if err != nil {
		return rep, err
	}
	cfg := m.sess.Config()
	m.mu.Lock()
	started := m.started
	m.mu.Unlock()
	m.tl.add(started, "openai", "the gateway starts a GPT-Live session while it answers the webhook (pre-warm): session.start\n"+
		"(%s, voice %s, %s, Responses delegation to %s), answered with session.started", cfg.Model, cfg.Voice, cfg.Format, cfg.BackendModel)
	for i, h := range lr.heard {
		switch {
		case h.over:
			m.tl.add(h.at, "openai", "hears the caller talk over it for %s and yields the turn: stops speaking (no event says so)\n"+
				"and transcribes the first word: %s (session.input_transcript.delta)", ms(yieldMs), quote(h.text))
		case i > 0 && lr.heard[i-1].turn == h.turn:
			m.tl.add(h.at, "openai", "%s of quiet ends the caller's turn; transcribes the rest: %s", ms(endOfTurnMs), quote(h.text))
		default:
			m.tl.add(h.at, "openai", "%s of quiet ends the caller's turn; transcribes it (session.input_transcript.delta): %s",
				ms(endOfTurnMs), quote(h.text))
		}
	}
	for i, s := range lr.said {
		all := len(m.script[i].replyAudio) / 8
		m.tl.add(s.began, "openai", "answers, ahead of real time: session.output_audio.delta of 20 ms every 10 ms, its words as\n"+
			"session.output_transcript.delta")
		if s.deltas*20 < all {
			m.tl.add(s.ended, "openai", "has stopped: %s of its %s answer sent; session.usage.updated", ms(s.deltas*20), ms(all))
		} else {
			m.tl.add(s.ended, "openai", "has sent all of its answer (%s); session.usage.updated", ms(all))
		}
	}
	return rep, nil
}

// checkLive checks the call as it must go on GPT-Live: the common checks;
// the simulator heard the script's caller turns and said two things, the
// first cut short when it yielded to the caller talking over it, the
// second whole; the gateway told the model nothing of the caller's
// playback (full duplex, it heard the caller), handed the caller or
// withdrew every chunk the model sent, and recorded the words the model
// said; and when the caller's words took the turn, it cleared the audio it
// had handed ahead of playback (the barge-in).
func checkLive(r callRecord, lr liveRecord) (callReport, error) {
	rep, bad, err := checkTurns(r)
	if err != nil {
		return rep, err
	}
	for _, e := range lr.errs {
		bad.add("the GPT-Live simulator answered the gateway with an error: %s", e)
	}
	results := 0
	for _, c := range lr.commands {
		switch c {
		case "session.start", "session.close":
		case "response.item.create", "response.create": // send_message's result
			results++
		default:
			bad.add("the gateway sent GPT-Live %s: it needs no word of the caller's playback", c)
		}
	}
	if results != 2 {
		bad.add("send_message: the gateway gave GPT-Live's delegation %d commands, want its result and response.create", results)
	}
	turns, yielded := 0, false
	for i, h := range lr.heard {
		if i == 0 || h.turn != lr.heard[i-1].turn {
			turns++
		}
		yielded = yielded || h.over
	}
	if len(lr.said) != len(r.script) || turns != len(r.script) {
		return rep, errors.Join(append(bad, fmt.Errorf("the GPT-Live simulator heard %d caller turns and said %d things, want %d of each",
			turns, len(lr.said), len(r.script)))...)
	}
	first, reply := rep.turns[1], r.script[0]
	said := lr.said[0]
	if !yielded || said.deltas >= len(reply.replyAudio)/160 {
		bad.add("GPT-Live sent %d ms of the %d ms first answer (yielded %v): it did not stop when the caller talked over it",
			said.deltas*20, len(reply.replyAudio)/8, yielded)
	}
	dropped := num(r.summary.Attrs["frames_dropped"])
	if first.SentMs+20*dropped != said.deltas*20 {
		bad.add("GPT-Live sent %d ms of the first answer, the gateway handed %d ms to the caller and withdrew %d chunks of 20 ms",
			said.deltas*20, first.SentMs, dropped)
	}
	if first.Text == "" || first.Text != said.text || !strings.HasPrefix(reply.reply, first.Text) {
		bad.add("the gateway recorded the first answer as %q, GPT-Live said %q of %q", first.Text, said.text, reply.reply)
	}
	if len(bad) > 0 {
		return rep, errors.Join(bad...)
	}
	countMarks(r, &rep, first.SentMs)
	checkBargeIn(r, rep, &bad)
	return rep, errors.Join(bad...)
}

func (m *live) explain(w io.Writer, r callRecord, rep callReport) {
	first := rep.turns[1]
	dropped := num(r.summary.Attrs["frames_dropped"])
	fmt.Fprintf(w, "\n  Barge-in, full duplex: GPT-Live heard the caller talk over it and stopped by itself; nothing told it\n"+
		"  what the caller heard, nothing was truncated. Its audio came ahead of real time; the gateway hands the\n"+
		"  caller only a small lead ahead of playback and holds the rest. When the caller's first word took the turn,\n"+
		"  it cleared the lead (%d marks came back flushed) and dropped the %s it held (%d chunks): the caller heard\n"+
		"  %s of the answer, %s after starting to talk over it; %s of it had been handed to the caller.\n",
		rep.flushed, ms(20*dropped), dropped, ms(first.HeardMs), ms(first.HeardMs-r.bargePlayed/8), ms(first.SentMs))
}
