package main

import (
	"encoding/json"
	"errors"
	"fmt"
)

// problems collects what went wrong.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// checkTurns checks what every backend must have done: the tools did
// what they should (checkActs: the caller texted, the call ended by the
// assistant after its goodbye), and the gateway's summary holds the script's
// turns in order, the caller's words as said and the last answer whole,
// heard to its end. The first answer is the backend's to check. It fails
// at once when the summary cannot be read or has not the script's turns.
func checkTurns(r callRecord) (callReport, problems, error) {
	var rep callReport
	var bad problems
	a := r.summary.Attrs
	checkActs(r, &bad)
	rep.usage, _ = a["usage"].(map[string]any)
	raw, _ := json.Marshal(a["turns"])
	if err := json.Unmarshal(raw, &rep.turns); err != nil {
		return rep, nil, errors.Join(append(bad, fmt.Errorf("the summary's turns: %w", err))...)
	}
	if len(rep.turns) != 2*len(r.script) {
		return rep, nil, errors.Join(append(bad, fmt.Errorf("the gateway's summary has %d turns, the script %d exchanges: %s",
			len(rep.turns), len(r.script), raw))...)
	}
	for i, t := range r.script {
		c, s := rep.turns[2*i], rep.turns[2*i+1]
		if c.Speaker != "caller" || c.Text != t.caller {
			bad.add("turn %d: the gateway recorded %s %q, the caller said %q", 2*i+1, c.Speaker, c.Text, t.caller)
		}
		if s.Speaker != "assistant" {
			bad.add("turn %d: the gateway recorded %s, want the assistant", 2*i+2, s.Speaker)
		}
	}
	last, reply := rep.turns[len(rep.turns)-1], r.script[len(r.script)-1]
	if last.Text != reply.reply || last.SentMs != len(reply.replyAudio)/8 {
		bad.add("turn %d: the gateway recorded the assistant's %q (%d ms sent), the assistant said %q (%d ms)",
			len(rep.turns), last.Text, last.SentMs, reply.reply, len(reply.replyAudio)/8)
	}
	if last.Interrupted || last.HeardMs != last.SentMs {
		bad.add("the last answer was heard for %d of %d ms (interrupted %v), want all of it", last.HeardMs, last.SentMs, last.Interrupted)
	}
	return rep, bad, nil
}

// countMarks counts the first answer's marks: the gateway sends one after
// each chunk it hands the caller, so the first answer's are the first
// sentMs/20 marks sent; each came back played, or flushed by a clear.
func countMarks(r callRecord, rep *callReport, sentMs int) {
	rep.chunks = (sentMs + 19) / 20
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
}

// checkBargeIn checks the gateway's side of a barge-in both backends
// share: it counted one, cleared the caller's audio once, marked the
// first answer interrupted, heard up to the clear and no further.
func checkBargeIn(r callRecord, rep callReport, bad *problems) {
	first := rep.turns[1]
	if n, _ := r.summary.Attrs["barge_ins"].(float64); n != 1 {
		bad.add("the gateway counted %v barge-ins, not 1", r.summary.Attrs["barge_ins"])
	}
	if !r.clear.seen || r.clears != 1 {
		bad.add("the caller received %d clears, want 1", r.clears)
	}
	if r.interruption == nil {
		bad.add("the gateway did not log the interruption")
	} else if u := r.interruption.Attrs["utterance"]; u != first.Utterance {
		bad.add("the gateway logged an interruption of %v, but the caller was hearing %s", u, first.Utterance)
	}
	if !first.Interrupted || first.HeardMs > r.clear.played/8 {
		bad.add("the summary says the first answer was heard for %d ms (interrupted %v), the caller had heard %d ms at the clear",
			first.HeardMs, first.Interrupted, r.clear.played/8)
	}
	if rep.playedMarks+rep.flushed != rep.chunks || rep.flushed == 0 {
		bad.add("of the first answer's %d marks, %d came back played and %d flushed", rep.chunks, rep.playedMarks, rep.flushed)
	}
	want := r.clear.played
	for _, t := range r.script[1:] {
		want += len(t.replyAudio)
	}
	if r.played != want {
		bad.add("the caller played %d bytes, want %d (the first answer up to the clear, then the others whole)", r.played, want)
	}
}
