package app

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// A WhatsApp question answered with one of the user's tools: the model
// calls it, the gateway runs it for the user on the WhatsApp channel and
// the answer reads its output.
func TestMessageAnsweredWithATool(t *testing.T) {
	runner := newStubRunner()
	h := newHarness(t, func(d *MessagesDeps) { d.Tools = Tools{Runner: runner} })
	h.asst.CallToolNext(ports.ToolCall{Name: "lookup", Arguments: json.RawMessage(`{"q":"tables"}`)}, 1)
	runner.answers <- "3 tables free at 7pm"
	r := handle(t, h.svc, msg("SM1", "Any table tonight?"))
	require.Len(t, r.Messages, 1)
	assert.Contains(t, r.Messages[0], "3 tables free at 7pm")
	runner.mu.Lock()
	defer runner.mu.Unlock()
	require.Len(t, runner.reqs, 1)
	assert.Equal(t, ports.ChannelWhatsApp, runner.reqs[0].Channel)
	assert.Equal(t, "whatsapp:+15551234567", runner.reqs[0].User)
	assert.Contains(t, h.logs.String(), "tool=lookup")
}

// A model that keeps calling tools is stopped after MaxCallsPerTurn rounds;
// the user gets the polite apology, not a hang.
func TestMessageToolLoopEnds(t *testing.T) {
	runner := newStubRunner()
	h := newHarness(t, func(d *MessagesDeps) { d.Tools = Tools{Runner: runner, MaxCallsPerTurn: 2} })
	h.asst.CallToolNext(ports.ToolCall{Name: "lookup", Arguments: json.RawMessage(`{}`)}, 50)
	for range 2 {
		runner.answers <- "again"
	}
	r := handle(t, h.svc, msg("SM1", "Loop!"))
	assert.Equal(t, []string{textApology}, r.Messages)
	runner.mu.Lock()
	defer runner.mu.Unlock()
	assert.Len(t, runner.reqs, 2)
}

func TestChatChannel(t *testing.T) {
	assert.Equal(t, ports.ChannelWhatsApp, chatChannel("whatsapp:+1555"))
	assert.Equal(t, ports.ChannelSMS, chatChannel("+1555"))
}
