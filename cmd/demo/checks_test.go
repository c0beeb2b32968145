package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/livesim"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/openairest"
	"github.com/convgateway/gateway/test/sim/twiliorest"
)

// realtimeCall is the record of a call on Realtime and the truncations
// the simulator confirmed and received.
type realtimeCall struct {
	callRecord
	truncations    []truncation
	simTruncations int
}

func (r realtimeCall) check() (callReport, error) {
	return checkRealtime(r.callRecord, r.truncations, r.simTruncations)
}

// goodCall is the record of a call on Realtime that went as the demo says:
// the first answer heard for 1,500 ms (75 marks played, 1,508 ms when the
// clear came), truncated at 1,500 ms, the second played out.
func goodCall(t *testing.T) realtimeCall {
	t.Helper()
	script := callScript()
	first, second := len(script[0].replyAudio)/8, len(script[1].replyAudio)/8
	turns := []map[string]any{
		{"speaker": "caller", "utterance": "item_caller_1", "text": script[0].caller, "start_ms": 20},
		{"speaker": "assistant", "utterance": "item_assistant_1", "text": script[0].reply, "start_ms": 2200, "sent_ms": first, "heard_ms": 1500, "interrupted": true},
		{"speaker": "caller", "utterance": "item_caller_2", "text": script[1].caller, "start_ms": 3720},
		{"speaker": "assistant", "utterance": "item_assistant_2", "text": script[1].reply, "start_ms": 4900, "sent_ms": second, "heard_ms": second},
	}
	turns = append(turns, endTurns(script, script[2].reply)...)
	attrs := summaryAttrs(t, map[string]any{"barge_ins": 1, "turns": turns})

	var frames []mediasim.Frame
	var marks []mediasim.MarkEcho
	for i := range first/20 + endMs(script)/20 {
		name := fmt.Sprintf("m%d", i+1)
		frames = append(frames, mediasim.Frame{Event: "media"}, mediasim.Frame{Event: "mark", Mark: name})
		marks = append(marks, mediasim.MarkEcho{Name: name, Flushed: i >= 75 && i < first/20})
	}
	return realtimeCall{
		callRecord: callRecord{
			script: script, summary: logLine{Msg: "call ended", Attrs: attrs},
			interruption: &logLine{Msg: "caller interrupted the assistant", Attrs: map[string]any{"utterance": "item_assistant_1", "heard_ms": 1500.0}},
			clear:        atClear{seen: true, played: 1508 * 8}, clears: 1,
			frames: frames, marks: marks, played: 1508*8 + endMs(script)*8, acts: goodActs(),
		},
		truncations: []truncation{{itemID: "item_assistant_1", endMs: 1500}}, simTruncations: 1,
	}
}

func TestCheckCallAcceptsTheCallAsItShouldGo(t *testing.T) {
	rep, err := goodCall(t).check()
	require.NoError(t, err)
	assert.Equal(t, "item_assistant_1", rep.turns[1].Utterance)
	assert.Equal(t, 220, rep.chunks)
	assert.Equal(t, 75, rep.playedMarks)
	assert.Equal(t, 145, rep.flushed)
	assert.Len(t, rep.turns, 8)
}

// endTurns are the summary's turns after the barge-in: the caller asks
// for the text, the assistant says (said) it sent it; the caller says
// goodbye, and so does the assistant.
func endTurns(script []turn, said string) []map[string]any {
	text, bye := len(script[2].replyAudio)/8, len(script[3].replyAudio)/8
	return []map[string]any{
		{"speaker": "caller", "utterance": "item_caller_3", "text": script[2].caller, "start_ms": 7880},
		{"speaker": "assistant", "utterance": "item_assistant_3", "text": said, "start_ms": 9260, "sent_ms": text, "heard_ms": text},
		{"speaker": "caller", "utterance": "item_caller_4", "text": script[3].caller, "start_ms": 11040},
		{"speaker": "assistant", "utterance": "item_assistant_4", "text": script[3].reply, "start_ms": 12120, "sent_ms": bye, "heard_ms": bye},
	}
}

// endMs is how long the answers after the first last, together.
func endMs(script []turn) int {
	n := 0
	for _, t := range script[1:] {
		n += len(t.replyAudio) / 8
	}
	return n
}

// summaryAttrs are the attributes of a "call ended" line of a call the
// assistant ended, with attrs, as parsed from JSON.
func summaryAttrs(t *testing.T, attrs map[string]any) map[string]any {
	t.Helper()
	attrs["end_reason"] = "assistant_ended"
	attrs["tools"] = []map[string]any{{"name": "send_message", "outcome": "ok"}, {"name": "end_call", "outcome": "ok"}}
	raw, err := json.Marshal(attrs)
	require.NoError(t, err)
	var parsed map[string]any
	require.NoError(t, json.Unmarshal(raw, &parsed))
	return parsed
}

// goodActs is what the tools did on a call that went as the demo says:
// the text sent, then said; the call completed 10 ms after the goodbye.
func goodActs() acts {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return acts{
		messages: []twiliorest.Message{{SID: "SM1", From: callTo, To: callerFrom, Body: address}},
		textedAt: t0.Add(9267 * time.Millisecond), textEnd: t0.Add(10706 * time.Millisecond),
		updates: []twiliorest.CallUpdate{{At: t0.Add(13159 * time.Millisecond), CallSID: callSid, Status: twiliorest.CallCompleted}},
		byeEnd:  t0.Add(13149 * time.Millisecond),
		results: []ports.ToolResult{{CallID: "call_text_1", Output: "sent"}},
	}
}

// TestCheckCallNamesWhatWentWrong: each way the call can go wrong makes
// the demo fail with a message naming it.
func TestCheckCallNamesWhatWentWrong(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(r *realtimeCall)
		want  string
	}{
		{"beyond what was heard", func(r *realtimeCall) {
			r.truncations[0].endMs = 1520
			r.summary.Attrs["turns"].([]any)[1].(map[string]any)["heard_ms"] = 1520.0
		}, "truncated item_assistant_1 at 1520 ms, but the caller had heard 1508 ms"},
		{"beyond the marks", func(r *realtimeCall) {
			r.clear.played = 1600 * 8
			r.played = 1600*8 + len(r.script[1].replyAudio)
			r.truncations[0].endMs = 1520
			r.summary.Attrs["turns"].([]any)[1].(map[string]any)["heard_ms"] = 1520.0
		}, "beyond the 1500 ms whose marks came back"},
		{"wrong item", func(r *realtimeCall) { r.truncations[0].itemID = "item_assistant_2" }, "truncated item_assistant_2, but the caller was hearing item_assistant_1"},
		{"nothing cut", func(r *realtimeCall) { r.truncations[0].endMs = 0 }, "at 0 ms"},
		{"no truncation", func(r *realtimeCall) { r.truncations, r.simTruncations = nil, 0 }, "received 0 truncations"},
		{"two clears", func(r *realtimeCall) { r.clears = 2 }, "received 2 clears"},
		{"not logged", func(r *realtimeCall) { r.interruption = nil }, "the gateway did not log the interruption"},
		{"no flush", func(r *realtimeCall) {
			for i := range r.marks {
				r.marks[i].Flushed = false
			}
		}, "220 came back played and 0 flushed"},
		{"summary disagrees", func(r *realtimeCall) {
			r.summary.Attrs["turns"].([]any)[1].(map[string]any)["heard_ms"] = 1480.0
		}, "heard for 1480 ms (interrupted true), the truncation says 1500 ms"},
		{"wrong transcript", func(r *realtimeCall) {
			r.summary.Attrs["turns"].([]any)[2].(map[string]any)["text"] = "Nine, please."
		}, `turn 3: the gateway recorded caller "Nine, please."`},
		{"dropped call", func(r *realtimeCall) { r.summary.Attrs["end_reason"] = "model_lost" }, "ended with model_lost"},
		{"second answer cut", func(r *realtimeCall) {
			r.summary.Attrs["turns"].([]any)[7].(map[string]any)["heard_ms"] = 100.0
		}, "the last answer was heard for 100 of 1000 ms"},
		{"played too much", func(r *realtimeCall) { r.played += 160 }, "the caller played"},
		{"missing turn", func(r *realtimeCall) {
			r.summary.Attrs["turns"] = r.summary.Attrs["turns"].([]any)[:7]
		}, "has 7 turns"},
		{"not texted", func(r *realtimeCall) { r.acts.messages = nil }, "send_message: the Messages REST API received 0 messages"},
		{"texted elsewhere", func(r *realtimeCall) { r.acts.messages[0].To = "+15559999999" }, "to +15559999999, want"},
		{"no result", func(r *realtimeCall) { r.acts.results = nil }, "send_message: the model received the results []"},
		{"said before sent", func(r *realtimeCall) { r.acts.textedAt = r.acts.textEnd.Add(time.Millisecond) }, "before the text was sent"},
		{"not ended", func(r *realtimeCall) { r.acts.updates = nil }, "end_call: the Calls REST API received 0 updates"},
		{"goodbye cut", func(r *realtimeCall) { r.acts.updates[0].At = r.acts.byeEnd.Add(-time.Millisecond) }, "before the goodbye had played"},
		{"transferred", func(r *realtimeCall) { r.acts.updates[0].Status, r.acts.updates[0].Twiml = "", "<Response/>" }, "want " + callSid + " completed"},
		{"caller hung up", func(r *realtimeCall) { r.summary.Attrs["end_reason"] = "caller_hangup" }, "end_call: the call ended with caller_hangup"},
		{"tools not listed", func(r *realtimeCall) { delete(r.summary.Attrs, "tools") }, "lists the tools [], want [send_message:ok end_call:ok]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := goodCall(t)
			tt.spoil(&r)
			_, err := r.check()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func goodChat() ([]chatMessage, chatRecord) {
	script := chatScript()
	first := fmt.Sprintf("%q", script[0].text)
	answers := []string{
		script[0].answer,
		script[1].answer + " (Earlier in this thread you wrote: " + first + ")",
		script[2].answer + " (Earlier in this thread you wrote 2 messages, the first: " + first + ")",
	}
	r := chatRecord{
		threads: []string{"conv_1", "conv_1", "conv_1"},
		given:   map[string]string{},
		answers: answers,
		inline:  []bool{true, true, false},
	}
	for i, m := range script {
		r.given[m.text] = answers[i]
		r.history = append(r.history, openairest.Item{Role: "user", Text: m.text}, openairest.Item{Role: "assistant", Text: answers[i]})
	}
	return script, r
}

func TestCheckChat(t *testing.T) {
	script, r := goodChat()
	require.NoError(t, checkChat(script, r))

	tests := []struct {
		name  string
		spoil func(r *chatRecord)
		want  string
	}{
		{"a thread per message", func(r *chatRecord) { r.threads[2] = "conv_2" }, "on several threads"},
		{"fast answer late", func(r *chatRecord) { r.inline[1] = false }, "message 2: the answer missed REPLY_INLINE_TIMEOUT"},
		{"slow answer inline", func(r *chatRecord) { r.inline[2] = true }, "message 3: the slow answer came inline"},
		{"no memory", func(r *chatRecord) {
			r.answers[1] = script[1].answer
			r.given[script[1].text] = script[1].answer
		}, "message 2: the answer does not show the thread's history"},
		{"answer changed", func(r *chatRecord) { r.answers[0] = "something else" }, `message 1: the user got "something else"`},
		{"history short", func(r *chatRecord) { r.history = r.history[:4] }, "holds 4 items, want 6"},
		{"not asked", func(r *chatRecord) { r.threads = r.threads[:2] }, "asked 2 times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script, r := goodChat()
			tt.spoil(&r)
			err := checkChat(script, r)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// goodLiveCall is the record of a call on GPT-Live that went as the demo
// says: the model sent 3,360 ms of the first answer before it yielded to
// the caller's first word; the gateway had handed 2,040 ms (the caller had
// heard 1,740 ms, 87 marks played, 1,747 ms when the clear came) and
// withdrew the 1,320 ms it held; the second answer played out.
func goodLiveCall(t *testing.T) (callRecord, liveRecord) {
	t.Helper()
	script := callScript()
	said := "Of course! Tonight I have a table for two at seven by the window, or at nine on the terrace, which is "
	second := len(script[1].replyAudio) / 8
	turns := []map[string]any{
		{"speaker": "caller", "text": script[0].caller, "start_ms": 2200},
		{"speaker": "assistant", "utterance": "u1", "text": said, "start_ms": 2200, "sent_ms": 2040, "heard_ms": 1740, "interrupted": true},
		{"speaker": "caller", "text": script[1].caller, "start_ms": 4000},
		{"speaker": "assistant", "utterance": "u2", "text": script[1].reply, "start_ms": 4960, "sent_ms": second, "heard_ms": second},
	}
	turns = append(turns, endTurns(script, livesim.SaysResult("sent"))...)
	attrs := summaryAttrs(t, map[string]any{"barge_ins": 1, "frames_dropped": 66, "turns": turns})

	var frames []mediasim.Frame
	var marks []mediasim.MarkEcho
	for i := range 2040/20 + endMs(script)/20 {
		name := fmt.Sprintf("m%d", i+1)
		frames = append(frames, mediasim.Frame{Event: "media"}, mediasim.Frame{Event: "mark", Mark: name})
		marks = append(marks, mediasim.MarkEcho{Name: name, Flushed: i >= 87 && i < 2040/20})
	}
	r := callRecord{
		script: script, summary: logLine{Msg: "call ended", Attrs: attrs},
		interruption: &logLine{Msg: "caller interrupted the assistant", Attrs: map[string]any{"utterance": "u1", "heard_ms": 1740.0}},
		bargePlayed:  1500 * 8,
		clear:        atClear{seen: true, played: 1747 * 8}, clears: 1,
		frames: frames, marks: marks, played: 1747*8 + endMs(script)*8, acts: goodActs(),
	}
	lr := liveRecord{
		said: []spoken{{deltas: 168, text: said}, {deltas: second / 20, text: script[1].reply},
			{deltas: len(script[2].replyAudio) / 160, text: livesim.SaysResult("sent")}, {deltas: len(script[3].replyAudio) / 160, text: script[3].reply}},
		heard: []heardWords{
			{text: script[0].caller},
			{text: "Seven, ", turn: 1, over: true},
			{text: "please.", turn: 1},
			{text: script[2].caller, turn: 2},
			{text: script[3].caller, turn: 3},
		},
		commands: []string{"session.start", "response.item.create", "response.create"},
	}
	return r, lr
}

func TestCheckLiveAcceptsTheCallAsItShouldGo(t *testing.T) {
	rep, err := checkLive(goodLiveCall(t))
	require.NoError(t, err)
	assert.Equal(t, 102, rep.chunks, "the chunks handed to the caller")
	assert.Equal(t, 87, rep.playedMarks)
	assert.Equal(t, 15, rep.flushed)
}

// TestCheckLiveNamesWhatWentWrong: each way the call on GPT-Live can go
// wrong makes the demo fail with a message naming it.
func TestCheckLiveNamesWhatWentWrong(t *testing.T) {
	first := func(r *callRecord) map[string]any { return r.summary.Attrs["turns"].([]any)[1].(map[string]any) }
	tests := []struct {
		name  string
		spoil func(r *callRecord, lr *liveRecord)
		want  string
	}{
		{"the model did not stop", func(r *callRecord, lr *liveRecord) {
			lr.said[0].deltas = 220
			lr.heard[1].over = false
		}, "it did not stop when the caller talked over it"},
		{"a truncation sent", func(r *callRecord, lr *liveRecord) {
			lr.commands = append(lr.commands, "session.commentary.append")
		}, "the gateway sent GPT-Live session.commentary.append"},
		{"chunks lost", func(r *callRecord, lr *liveRecord) { r.summary.Attrs["frames_dropped"] = 60.0 }, "withdrew 60 chunks"},
		{"words changed", func(r *callRecord, lr *liveRecord) { first(r)["text"] = "Of course!" }, `recorded the first answer as "Of course!"`},
		{"no clear", func(r *callRecord, lr *liveRecord) {
			r.clear, r.clears, r.interruption = atClear{}, 0, nil
			r.summary.Attrs["barge_ins"] = 0.0
		}, "received 0 clears"},
		{"heard past the clear", func(r *callRecord, lr *liveRecord) { first(r)["heard_ms"] = 1760.0 }, "heard for 1760 ms"},
		{"a turn too many", func(r *callRecord, lr *liveRecord) { lr.heard[2].turn = 5 }, "heard 5 caller turns"},
		{"no result given", func(r *callRecord, lr *liveRecord) { lr.commands = lr.commands[:1] }, "gave GPT-Live's delegation 0 commands"},
		{"an error", func(r *callRecord, lr *liveRecord) { lr.errs = []string{"invalid_value: no"} }, "answered the gateway with an error: invalid_value"},
		{"caller's words", func(r *callRecord, lr *liveRecord) {
			r.summary.Attrs["turns"].([]any)[2].(map[string]any)["text"] = "Seven, "
		}, `turn 3: the gateway recorded caller "Seven, "`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, lr := goodLiveCall(t)
			tt.spoil(&r, &lr)
			_, err := checkLive(r, lr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
