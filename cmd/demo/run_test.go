package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/test/sim/mulaw"
)

// TestMain fails the package when the demo leaves a goroutine behind: it
// must stop the gateway and every simulator it started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs the whole demo as make demo does (in real time, about a
// dozen seconds) and checks that its transcript tells every key event,
// that the caller's WAV holds what the caller heard, and that the
// gateway's log was kept and shows no secret. The demo checks the records
// itself (checkCall, checkChat) and fails otherwise; these assertions
// check what it prints.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "heard.wav")
	var out strings.Builder
	err := run(context.Background(), []string{"demo", "--dir", dir, "--out", wav}, &out)
	transcript := out.String()
	require.NoError(t, err, transcript)
	t.Log("\n" + transcript)

	for _, want := range []string{
		// the call
		"twilio   POST /incoming-call, signed",
		"gateway  200 TwiML after",
		"with a single-use token <Parameter>",
		"the gateway opens a Realtime session while it answers the webhook (pre-warm)",
		"caller   starts speaking",
		"input_audio_buffer.speech_started (item_caller_1)",
		`transcript: "Hi, I'd like to book a table for two tonight."`,
		"answers (resp_1, item_assistant_1): 4,400 ms of audio",
		"caller   hears the assistant: first audio",
		"caller   talks over the assistant after hearing",
		"caller   clear arrives: playback stops after",
		"pending marks come back flushed",
		"receives conversation.item.truncate item_assistant_1 at audio_end_ms",
		`gateway  logs "caller interrupted the assistant": utterance item_assistant_1`,
		"caller   hangs up (stop)",
		`gateway  logs "call ended": caller_hangup`,
		"heard 2,400 ms of 2,400 ms",
		"What the caller heard",
		// WhatsApp
		`user     sends "Hi! Do you have a table for two tonight?"`,
		"the answer inline: <Message>",
		`(Earlier in this thread you wrote: "Hi! Do you have a table for two tonight?")`,
		"200 empty <Response/> after",
		"the Messages REST API receives the answer",
		"One thread: the gateway asked for every answer on conversation",
		"0 warnings or errors",
		"every step happened as expected",
	} {
		assert.Contains(t, transcript, want)
	}
	assert.Regexp(t, `\+\d+\.\d{3}s  caller   clear arrives`, transcript, "events carry relative times")
	assert.Regexp(t, `heard [\d,]+ ms of 4,400 ms, interrupted`, transcript)
	assert.Contains(t, transcript, wav, "the WAV's path is printed")
	assert.Contains(t, transcript, filepath.Join(dir, "gateway.log"), "the log's path is printed")
	assert.NotContains(t, transcript, `"level"`, "no JSON log lines in the transcript")

	f, err := os.Open(wav)
	require.NoError(t, err)
	defer f.Close()
	w, err := mulaw.ReadWAV(f)
	require.NoError(t, err)
	assert.Equal(t, "mu-law, 8000 Hz, mono", w.String())
	reply := callScript()[1].replyAudio
	require.Greater(t, len(w.Data), bargeAfterMs*8+len(reply), "the start of the first answer, then all of the second")
	assert.Equal(t, reply, w.Data[len(w.Data)-len(reply):], "the caller heard the second answer to the end, untouched")

	logs, err := os.ReadFile(filepath.Join(dir, "gateway.log"))
	require.NoError(t, err)
	assert.Contains(t, string(logs), `"msg":"call ended"`)
	assert.NotContains(t, string(logs), demoAuthToken)
	assert.NotContains(t, string(logs), demoAPIKey)
}

func TestParseFlags(t *testing.T) {
	o, err := parse([]string{"demo"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Greater(t, o.slow, o.inline, "the slow answer misses the inline timeout")

	_, err = parse([]string{"demo", "extra"}, &strings.Builder{})
	assert.ErrorContains(t, err, `unexpected arguments ["extra"]`)
	_, err = parse([]string{"demo", "--inline-timeout", "20s"}, &strings.Builder{})
	assert.ErrorContains(t, err, "--inline-timeout must be positive and below 15s")
	_, err = parse([]string{"demo", "--nope"}, &strings.Builder{})
	assert.Error(t, err)
}

func TestRunFailsClearlyWhenItCannotWrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	err := run(context.Background(), []string{"demo", "--dir", filepath.Join(file, "sub")}, &strings.Builder{})
	assert.ErrorContains(t, err, "make the demo directory")
}
