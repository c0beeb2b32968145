package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/openairest"
)

// goodCall is the record of a call that went as the demo says: the first
// answer heard for 1,500 ms (75 marks played, 1,508 ms when the clear
// came), truncated at 1,500 ms, the second played out.
func goodCall(t *testing.T) callRecord {
	t.Helper()
	script := callScript()
	first, second := len(script[0].replyAudio)/8, len(script[1].replyAudio)/8
	turns := []map[string]any{
		{"speaker": "caller", "utterance": "item_caller_1", "text": script[0].caller, "start_ms": 20},
		{"speaker": "assistant", "utterance": "item_assistant_1", "text": script[0].reply, "start_ms": 2200, "sent_ms": first, "heard_ms": 1500, "interrupted": true},
		{"speaker": "caller", "utterance": "item_caller_2", "text": script[1].caller, "start_ms": 3720},
		{"speaker": "assistant", "utterance": "item_assistant_2", "text": script[1].reply, "start_ms": 4900, "sent_ms": second, "heard_ms": second},
	}
	raw, err := json.Marshal(map[string]any{"end_reason": "caller_hangup", "barge_ins": 1, "turns": turns})
	require.NoError(t, err)
	var attrs map[string]any
	require.NoError(t, json.Unmarshal(raw, &attrs))

	var frames []mediasim.Frame
	var marks []mediasim.MarkEcho
	for i := range first/20 + second/20 {
		name := fmt.Sprintf("m%d", i+1)
		frames = append(frames, mediasim.Frame{Event: "media"}, mediasim.Frame{Event: "mark", Mark: name})
		marks = append(marks, mediasim.MarkEcho{Name: name, Flushed: i >= 75 && i < first/20})
	}
	return callRecord{
		script: script, summary: logLine{Msg: "call ended", Attrs: attrs},
		clear: atClear{seen: true, played: 1508 * 8}, clears: 1,
		truncations: []truncation{{itemID: "item_assistant_1", endMs: 1500}}, simTruncations: 1,
		frames: frames, marks: marks, played: 1508*8 + len(script[1].replyAudio),
	}
}

func TestCheckCallAcceptsTheCallAsItShouldGo(t *testing.T) {
	rep, err := checkCall(goodCall(t))
	require.NoError(t, err)
	assert.Equal(t, "item_assistant_1", rep.interruptedItem)
	assert.Equal(t, 220, rep.chunks)
	assert.Equal(t, 75, rep.playedMarks)
	assert.Equal(t, 145, rep.flushed)
	assert.Len(t, rep.turns, 4)
}

// TestCheckCallNamesWhatWentWrong: each way the call can go wrong makes
// the demo fail with a message naming it.
func TestCheckCallNamesWhatWentWrong(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(r *callRecord)
		want  string
	}{
		{"beyond what was heard", func(r *callRecord) {
			r.truncations[0].endMs = 1520
			r.summary.Attrs["turns"].([]any)[1].(map[string]any)["heard_ms"] = 1520.0
		}, "truncated item_assistant_1 at 1520 ms, but the caller had heard 1508 ms"},
		{"beyond the marks", func(r *callRecord) {
			r.clear.played = 1600 * 8
			r.played = 1600*8 + len(r.script[1].replyAudio)
			r.truncations[0].endMs = 1520
			r.summary.Attrs["turns"].([]any)[1].(map[string]any)["heard_ms"] = 1520.0
		}, "beyond the 1500 ms whose marks came back"},
		{"wrong item", func(r *callRecord) { r.truncations[0].itemID = "item_assistant_2" }, "truncated item_assistant_2, but the caller was hearing item_assistant_1"},
		{"nothing cut", func(r *callRecord) { r.truncations[0].endMs = 0 }, "at 0 ms"},
		{"no truncation", func(r *callRecord) { r.truncations, r.simTruncations = nil, 0 }, "received 0 truncations"},
		{"two clears", func(r *callRecord) { r.clears = 2 }, "received 2 clears"},
		{"no flush", func(r *callRecord) {
			for i := range r.marks {
				r.marks[i].Flushed = false
			}
		}, "220 came back played and 0 flushed"},
		{"summary disagrees", func(r *callRecord) {
			r.summary.Attrs["turns"].([]any)[1].(map[string]any)["heard_ms"] = 1480.0
		}, "heard for 1480 ms (interrupted true), the truncation says 1500 ms"},
		{"wrong transcript", func(r *callRecord) {
			r.summary.Attrs["turns"].([]any)[2].(map[string]any)["text"] = "Nine, please."
		}, `turn 3: the gateway recorded caller "Nine, please."`},
		{"dropped call", func(r *callRecord) { r.summary.Attrs["end_reason"] = "model_lost" }, "ended with model_lost"},
		{"second answer cut", func(r *callRecord) {
			r.summary.Attrs["turns"].([]any)[3].(map[string]any)["heard_ms"] = 100.0
		}, "the last answer was heard for 100 of 2400 ms"},
		{"played too much", func(r *callRecord) { r.played += 160 }, "the caller played"},
		{"missing turn", func(r *callRecord) {
			r.summary.Attrs["turns"] = r.summary.Attrs["turns"].([]any)[:3]
		}, "has 3 turns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := goodCall(t)
			tt.spoil(&r)
			_, err := checkCall(r)
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
