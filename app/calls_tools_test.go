package app

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// stubRunner is a ports.ToolRunner whose one tool, "lookup", answers what
// the test sends on answers (or fails with the error sent on fails).
type stubRunner struct {
	answers chan string
	fails   chan error
	mu      sync.Mutex
	reqs    []ports.ToolRequest
}

func newStubRunner() *stubRunner {
	return &stubRunner{answers: make(chan string, 4), fails: make(chan error, 4)}
}

func (r *stubRunner) Tools(ports.Channel) []ports.ToolSpec {
	return []ports.ToolSpec{{Name: "lookup", Description: "Looks up.", Parameters: json.RawMessage(`{"type":"object"}`)}}
}

func (r *stubRunner) Run(ctx context.Context, req ports.ToolRequest) (string, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	if req.Call.Name != "lookup" {
		return "", ports.ErrNotFound
	}
	select {
	case out := <-r.answers:
		return out, nil
	case err := <-r.fails:
		return "", err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func toolCall(id, name, args string) ports.ToolCall {
	return ports.ToolCall{ID: id, Name: name, Arguments: json.RawMessage(args)}
}

// waitResults waits until the session received n tool results.
func waitResults(k *callTest, sess *fake.SpeechSession, n int) []ports.ToolResult {
	k.t.Helper()
	got, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.ToolResults) >= n })
	require.NoError(k.t, err)
	return got.ToolResults
}

func TestToolsAreDeclaredWhereTheyCanWork(t *testing.T) {
	control := fake.NewCallControl()
	k := newCallTest(t, func(d *CallsDeps) {
		d.Tools = Tools{Control: control, TransferTo: "+15550001111", Sender: fake.NewMessageSender(), TextFrom: "+15550002222", Runner: newStubRunner()}
	})
	sess := k.start("CA1")
	var names []string
	for _, spec := range sess.Config().Tools {
		names = append(names, spec.Name)
		assert.True(t, json.Valid(spec.Parameters), spec.Name)
	}
	assert.Equal(t, []string{ToolEndCall, ToolTransfer, ToolSendMessage, "lookup"}, names)
	k.hangUp(sess)

	bare := newCallTest(t, func(d *CallsDeps) { d.Tools = Tools{Control: control} })
	sess = bare.start("CA2")
	require.Len(t, sess.Config().Tools, 1, "no transfer without TRANSFER_NUMBER, no texting without a sender")
	assert.Equal(t, ToolEndCall, sess.Config().Tools[0].Name)
	bare.hangUp(sess)
}

// end_call waits for the goodbye to play out, then completes the call
// through call control; the call ends as the assistant's doing.
func TestToolEndCall(t *testing.T) {
	control := fake.NewCallControl()
	k := newCallTest(t, func(d *CallsDeps) { d.Tools = Tools{Control: control} })
	sess := k.start("CA1")
	require.NoError(t, sess.SayAs(k.ctx, "bye", "Goodbye!", audio(100), audio(100)))
	require.NoError(t, sess.CallTool(k.ctx, toolCall("call_1", ToolEndCall, `{}`)))
	k.received(peer.OutAudio, 2)
	time.Sleep(2 * settleQuiet) // the model is quiet, but the goodbye has not played
	assert.Empty(t, control.Ended(), "the call is not ended before the goodbye plays")
	require.NoError(t, k.peer.PlayOut(k.ctx))
	ended, err := control.WaitEnded(k.ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"CA1"}, ended)
	require.NoError(t, k.peer.HangUp(k.ctx)) // Twilio ends the stream of a completed call
	require.NoError(t, k.waitServed())
	s := k.summary()
	assert.Equal(t, "assistant_ended", s.EndReason)
	assert.Equal(t, []ToolUse{{Name: ToolEndCall, Outcome: "ok", DurationMs: s.Tools[0].DurationMs}}, s.Tools)
	assert.Empty(t, sess.ToolResults(), "no result: the call ends")
}

func TestToolTransfer(t *testing.T) {
	control := fake.NewCallControl()
	k := newCallTest(t, func(d *CallsDeps) {
		d.Tools = Tools{Control: control, TransferTo: "sip:desk@example.com"}
	})
	token := k.answer("CA1")
	k.serve()
	require.NoError(t, k.peer.Start(k.ctx, ports.CallInfo{CallID: "CA1", From: "+15551234567", To: "+15550000000", Params: map[string]string{"token": token}}))
	sess, err := k.model.Session(k.ctx, 0)
	require.NoError(t, err)
	k.peer.AutoPlay(true)
	require.NoError(t, sess.SayAs(k.ctx, "t1", "Transferring you now.", audio(40)))
	require.NoError(t, sess.CallTool(k.ctx, toolCall("call_1", ToolTransfer, `{"reason":"billing"}`)))
	transfers, err := control.WaitTransfers(k.ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, []fake.Transfer{{CallID: "CA1", To: "sip:desk@example.com", CallerID: "+15550000000"}}, transfers,
		"dialed with the number that was called as caller id")
	require.NoError(t, k.peer.HangUp(k.ctx))
	require.NoError(t, k.waitServed())
	assert.Equal(t, "transferred", k.summary().EndReason)
}

// A call control failure is the tool's result: the assistant tells the
// caller and the call goes on.
func TestToolEndCallFails(t *testing.T) {
	control := fake.NewCallControl()
	control.FailNext(ports.ErrUnavailable)
	k := newCallTest(t, func(d *CallsDeps) { d.Tools = Tools{Control: control} })
	sess := k.start("CA1")
	require.NoError(t, sess.CallTool(k.ctx, toolCall("call_1", ToolEndCall, `{}`)))
	res := waitResults(k, sess, 1)
	assert.Equal(t, "call_1", res[0].CallID)
	assert.Contains(t, res[0].Error, "could not be ended")
	s := k.hangUp(sess)
	assert.Equal(t, "error", s.Tools[0].Outcome)
}

// The user's tool runs in the background; after HoldAfter the assistant
// says a holding phrase, once; the result goes to the model when it comes.
func TestToolRunsWithHoldingPhrase(t *testing.T) {
	runner := newStubRunner()
	k := newCallTest(t, func(d *CallsDeps) { d.Tools = Tools{Runner: runner, HoldAfter: 20 * time.Millisecond} })
	sess := k.start("CA1")
	require.NoError(t, sess.CallTool(k.ctx, toolCall("call_1", "lookup", `{"q":"tables"}`)))
	got, err := sess.WaitSent(k.ctx, func(s fake.SpeechSent) bool { return len(s.Responses) >= 1 })
	require.NoError(t, err)
	assert.Equal(t, []string{DefaultHoldPrompt}, got.Responses, "one holding phrase")
	runner.answers <- "3 tables free"
	res := waitResults(k, sess, 1)
	assert.Equal(t, ports.ToolResult{CallID: "call_1", Output: "3 tables free"}, res[0])
	runner.mu.Lock()
	req := runner.reqs[0]
	runner.mu.Unlock()
	assert.Equal(t, ports.ChannelVoice, req.Channel)
	assert.Equal(t, "CA1", req.CallID)
	s := k.hangUp(sess)
	assert.Len(t, sess.Sent().Responses, 1, "the holding phrase is said once")
	require.Len(t, s.Tools, 1)
	assert.Equal(t, "ok", s.Tools[0].Outcome)
	assert.Regexp(t, `"msg":"tool ran",.*"tool":"lookup","outcome":"ok"`, k.logs.String())
	assert.NotContains(t, k.logs.String(), `"level":"INFO","msg":"tool arguments"`, "arguments only at debug")
}

func TestToolFailureIsAResult(t *testing.T) {
	runner := newStubRunner()
	k := newCallTest(t, func(d *CallsDeps) { d.Tools = Tools{Runner: runner, HoldAfter: -1} })
	sess := k.start("CA1")
	runner.fails <- errors.New("tool lookup: answered 502")
	require.NoError(t, sess.CallTool(k.ctx, toolCall("call_1", "lookup", `{}`)))
	res := waitResults(k, sess, 1)
	assert.Equal(t, "tool lookup: answered 502", res[0].Error)
	require.NoError(t, sess.CallTool(k.ctx, toolCall("call_2", "nope", `{}`)))
	res = waitResults(k, sess, 2)
	assert.Equal(t, "there is no such tool here", res[1].Error)
	s := k.hangUp(sess)
	assert.Empty(t, sess.Sent().Responses, "no holding phrase when it is off")
	require.Len(t, s.Tools, 2)
}

// At most MaxCallsPerTurn tool calls between two turns of the caller.
func TestToolCallsPerTurnAreBounded(t *testing.T) {
	runner := newStubRunner()
	k := newCallTest(t, func(d *CallsDeps) { d.Tools = Tools{Runner: runner, MaxCallsPerTurn: 2, HoldAfter: -1} })
	sess := k.start("CA1")
	for range 2 {
		runner.answers <- "ok"
	}
	for _, id := range []string{"c1", "c2", "c3"} {
		require.NoError(t, sess.CallTool(k.ctx, toolCall(id, "lookup", `{}`)))
	}
	res := waitResults(k, sess, 3)
	var refused []string
	for _, r := range res {
		if r.Error != "" {
			refused = append(refused, r.CallID)
		}
	}
	assert.Equal(t, []string{"c3"}, refused)
	require.NoError(t, sess.CallerSpeaks(k.ctx, "And tomorrow?"))
	runner.answers <- "ok"
	require.NoError(t, sess.CallTool(k.ctx, toolCall("c4", "lookup", `{}`)))
	res = waitResults(k, sess, 4)
	assert.Empty(t, res[3].Error, "a new turn counts anew")
	k.hangUp(sess)
}

func TestToolSendMessage(t *testing.T) {
	for _, tt := range []struct{ from, to string }{
		{"whatsapp:+14155238886", "whatsapp:+15551234567"},
		{"+14155238886", "+15551234567"},
	} {
		t.Run(tt.from, func(t *testing.T) {
			sender := fake.NewMessageSender()
			k := newCallTest(t, func(d *CallsDeps) { d.Tools = Tools{Sender: sender, TextFrom: tt.from, HoldAfter: -1} })
			token := k.answer("CA1")
			k.serve()
			require.NoError(t, k.peer.Start(k.ctx, ports.CallInfo{CallID: "CA1", From: "+15551234567", To: "+15550000000", Params: map[string]string{"token": token}}))
			sess, err := k.model.Session(k.ctx, 0)
			require.NoError(t, err)
			require.NoError(t, sess.CallTool(k.ctx, toolCall("c1", ToolSendMessage, `{"text":"12 Main St"}`)))
			res := waitResults(k, sess, 1)
			assert.Equal(t, ports.ToolResult{CallID: "c1", Output: "sent"}, res[0])
			assert.Equal(t, []ports.OutboundMessage{{To: tt.to, From: tt.from, Body: "12 Main St"}}, sender.Sent())

			sender.RejectNext()
			require.NoError(t, sess.CallTool(k.ctx, toolCall("c2", ToolSendMessage, `{"text":"again"}`)))
			res = waitResults(k, sess, 2)
			assert.Contains(t, res[1].Error, "refused", "the refusal is the result the assistant talks about")
			k.hangUp(sess)
		})
	}
}
