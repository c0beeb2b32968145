package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/convgateway/gateway/test/sim/mediasim"
)

// callRecord is everything the demo call left behind: the script it
// followed, the gateway's summary log line, and what the simulators
// recorded.
type callRecord struct {
	script  []turn
	summary logLine
	// clear is what the caller had when the clear arrived; clears counts
	// the clears it received.
	clear  atClear
	clears int
	// truncations are the confirmations the Realtime simulator sent;
	// simTruncations counts the truncate events it received.
	truncations    []truncation
	simTruncations int
	// frames, marks and played are the caller's records: the frames
	// the gateway sent, the marks echoed, the bytes of audio played.
	frames []mediasim.Frame
	marks  []mediasim.MarkEcho
	played int
}

// turnLog is a turn of the gateway's "call ended" line.
type turnLog struct {
	Speaker     string `json:"speaker"`
	Utterance   string `json:"utterance"`
	Text        string `json:"text"`
	StartMs     int64  `json:"start_ms"`
	SentMs      int    `json:"sent_ms"`
	HeardMs     int    `json:"heard_ms"`
	Interrupted bool   `json:"interrupted"`
}

// callReport is what checkCall worked out for the transcript.
type callReport struct {
	turns           []turnLog
	usage           map[string]any
	interruptedItem string
	chunks          int // chunks (and marks) of the first answer
	playedMarks     int // its marks that came back played
	flushed         int // its marks that came back flushed by the clear
}

// checkCall checks that the call went as the demo says it did, from the
// records alone: the gateway's summary matches the script, the caller's
// audio was cleared once, the Realtime simulator received one truncation
// of the interrupted answer at no more than what the caller had heard and
// no more than the marks that came back, and the second answer played out.
func checkCall(r callRecord) (callReport, error) {
	var rep callReport
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	a := r.summary.Attrs
	if a["end_reason"] != "caller_hangup" {
		bad("the call ended with %v, not the caller's hang-up", a["end_reason"])
	}
	if n, _ := a["barge_ins"].(float64); n != 1 {
		bad("the gateway counted %v barge-ins, not 1", a["barge_ins"])
	}
	rep.usage, _ = a["usage"].(map[string]any)
	raw, _ := json.Marshal(a["turns"])
	if err := json.Unmarshal(raw, &rep.turns); err != nil {
		bad("the summary's turns: %v", err)
	}
	if len(rep.turns) != 2*len(r.script) {
		return rep, fmt.Errorf("the gateway's summary has %d turns, the script %d exchanges: %s", len(rep.turns), len(r.script), raw)
	}
	for i, t := range r.script {
		c, s := rep.turns[2*i], rep.turns[2*i+1]
		if c.Speaker != "caller" || c.Text != t.caller {
			bad("turn %d: the gateway recorded %s %q, the caller said %q", 2*i+1, c.Speaker, c.Text, t.caller)
		}
		if s.Speaker != "assistant" || s.Text != t.reply || s.SentMs != len(t.replyAudio)/8 {
			bad("turn %d: the gateway recorded %s %q (%d ms sent), the assistant said %q (%d ms)",
				2*i+2, s.Speaker, s.Text, s.SentMs, t.reply, len(t.replyAudio)/8)
		}
	}
	if len(problems) > 0 {
		return rep, errors.Join(problems...)
	}

	interrupted, last := rep.turns[1], rep.turns[len(rep.turns)-1]
	rep.interruptedItem = interrupted.Utterance
	if !r.clear.seen || r.clears != 1 {
		bad("the caller received %d clears, want 1", r.clears)
	}
	if r.simTruncations != 1 || len(r.truncations) != 1 {
		return rep, errors.Join(append(problems, fmt.Errorf("the Realtime simulator received %d truncations and confirmed %d, want 1",
			r.simTruncations, len(r.truncations)))...)
	}
	tr := r.truncations[0]
	heardMs := r.clear.played / 8
	switch {
	case tr.itemID != interrupted.Utterance:
		bad("the gateway truncated %s, but the caller was hearing %s", tr.itemID, interrupted.Utterance)
	case tr.endMs <= 0 || tr.endMs > heardMs:
		bad("the gateway truncated %s at %d ms, but the caller had heard %d ms", tr.itemID, tr.endMs, heardMs)
	case tr.endMs >= interrupted.SentMs:
		bad("the truncation at %d ms cut nothing of the %d ms answer", tr.endMs, interrupted.SentMs)
	}
	if !interrupted.Interrupted || interrupted.HeardMs != tr.endMs {
		bad("the summary says the first answer was heard for %d ms (interrupted %v), the truncation says %d ms",
			interrupted.HeardMs, interrupted.Interrupted, tr.endMs)
	}
	if last.Interrupted || last.HeardMs != last.SentMs {
		bad("the last answer was heard for %d of %d ms (interrupted %v), want all of it", last.HeardMs, last.SentMs, last.Interrupted)
	}

	// The first answer's marks are the first ones the gateway sent, one
	// per 20 ms chunk.
	rep.chunks = (len(r.script[0].replyAudio) + 159) / 160
	first := map[string]bool{}
	for _, f := range r.frames {
		if f.Event == "mark" && len(first) < rep.chunks {
			first[f.Mark] = true
		}
	}
	for _, m := range r.marks {
		switch {
		case !first[m.Name]:
		case m.Flushed:
			rep.flushed++
		default:
			rep.playedMarks++
		}
	}
	if rep.playedMarks+rep.flushed != rep.chunks || rep.flushed == 0 {
		bad("of the first answer's %d marks, %d came back played and %d flushed", rep.chunks, rep.playedMarks, rep.flushed)
	}
	if tr.endMs > rep.playedMarks*20 {
		bad("the truncation at %d ms is beyond the %d ms whose marks came back", tr.endMs, rep.playedMarks*20)
	}
	if want := r.clear.played + len(r.script[len(r.script)-1].replyAudio); r.played != want {
		bad("the caller played %d bytes, want %d (the first answer up to the clear, then the second)", r.played, want)
	}
	return rep, errors.Join(problems...)
}
