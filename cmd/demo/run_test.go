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

// runDemo runs the whole demo as make demo does, with args (in real time,
// about a dozen seconds), and checks what every run must print and keep:
// the WhatsApp exchange, the caller's WAV (ending with the whole second
// answer), and the gateway's log, kept and without a secret. The demo
// checks the records itself (the backend's call checks, checkChat) and
// fails otherwise; these assertions check what it prints. It returns the
// transcript.
func runDemo(t *testing.T, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	wav := filepath.Join(dir, "heard.wav")
	var out strings.Builder
	err := run(context.Background(), append([]string{"demo", "--dir", dir, "--out", wav}, args...), &out)
	transcript := out.String()
	require.NoError(t, err, transcript)
	t.Log("\n" + transcript)

	for _, want := range []string{
		// the call
		"twilio   POST /incoming-call, signed",
		"gateway  200 TwiML after",
		"with a single-use token <Parameter>",
		"caller   starts speaking",
		"caller   hears the assistant: first audio",
		"caller   talks over the assistant after hearing",
		"caller   clear arrives: playback stops after",
		"pending marks come back flushed",
		"heard 2,400 ms of 2,400 ms",
		// the tools
		"calls send_message",
		`{"text":"Trattoria Demo, 12 Harbour Street. Table for two at 7 pm tonight."}`,
		`receives the result`,
		"twilio   the Messages REST API receives the text (POST /2010-04-01/Accounts/" + demoAccountSID + "/Messages.json,",
		`From +15550100200, To +15551230001, SM`,
		"caller   hears the end of the answer after the text",
		"caller   hears the first 20 ms of the answer after the text (its first mark played),",
		"calls end_call",
		"caller   hears the end of the goodbye (its last mark played)",
		"twilio   the Calls REST API receives the end of the call",
		"(POST /2010-04-01/Accounts/" + demoAccountSID + "/Calls/" + callSid + ".json, Status=completed)",
		"twilio   the call is completed: Twilio ends the media stream (stop)",
		`gateway  logs "call ended": assistant_ended`,
		`"Goodbye, see you tonight!"`,
		"heard 1,000 ms of 1,000 ms",
		"tools send_message (ok), end_call (ok)",
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
	assert.Contains(t, transcript, wav, "the WAV's path is printed")
	assert.Contains(t, transcript, filepath.Join(dir, "gateway.log"), "the log's path is printed")
	assert.NotContains(t, transcript, `"level"`, "no JSON log lines in the transcript")

	f, err := os.Open(wav)
	require.NoError(t, err)
	defer f.Close()
	w, err := mulaw.ReadWAV(f)
	require.NoError(t, err)
	assert.Equal(t, "mu-law, 8000 Hz, mono", w.String())
	var rest []byte
	for _, t := range callScript()[1:] {
		rest = append(rest, t.replyAudio...)
	}
	require.Greater(t, len(w.Data), bargeAfterMs*8+len(rest), "the start of the first answer, then all of the others")
	assert.Equal(t, rest, w.Data[len(w.Data)-len(rest):], "the caller heard the other answers to the end, untouched")

	logs, err := os.ReadFile(filepath.Join(dir, "gateway.log"))
	require.NoError(t, err)
	assert.Contains(t, string(logs), `"msg":"call ended"`)
	assert.NotContains(t, string(logs), demoAuthToken)
	assert.NotContains(t, string(logs), demoAPIKey)
	return transcript
}

// TestDemo runs the demo on OpenAI Realtime (the default) and checks that
// its transcript tells the Realtime barge-in: the model reports the
// caller's speech, the gateway clears the caller's audio and truncates the
// answer where the caller stopped hearing it.
func TestDemo(t *testing.T) {
	transcript := runDemo(t)
	for _, want := range []string{
		"on Realtime (real time",
		"the gateway opens a Realtime session while it answers the webhook (pre-warm)",
		"input_audio_buffer.speech_started (item_caller_1)",
		`transcript: "Hi, I'd like to book a table for two tonight."`,
		"answers (resp_1, item_assistant_1): 4,400 ms of audio",
		"receives conversation.item.truncate item_assistant_1 at audio_end_ms",
		`gateway  logs "caller interrupted the assistant": utterance item_assistant_1`,
		"tokens 60 in / 569 out",
	} {
		assert.Contains(t, transcript, want)
	}
	assert.Regexp(t, `heard [\d,]+ ms of 4,400 ms, interrupted`, transcript)
}

// TestDemoOnGPTLive runs the demo on GPT-Live and checks that its
// transcript tells the full duplex barge-in: no speech events and no
// truncation; the model yields to the caller's words and stops by itself,
// and the gateway clears the audio it had handed ahead of playback and
// drops what it held.
func TestDemoOnGPTLive(t *testing.T) {
	transcript := runDemo(t, "--speech", "live")
	for _, want := range []string{
		"on GPT-Live (real time",
		"wire.Build: OpenAI GPT-Live and Responses adapters",
		"the gateway starts a GPT-Live session while it answers the webhook (pre-warm): session.start",
		"(gpt-live-1, voice marin, audio/pcmu@8000, Responses delegation to",
		`transcribes it (session.input_transcript.delta): "Hi, I'd like to book a table for two tonight."`,
		"answers, ahead of real time: session.output_audio.delta",
		"hears the caller talk over it for 240 ms and yields the turn",
		`transcribes the first word: "Seven, "`,
		`transcribes the rest: "please."`,
		`gateway  logs "caller interrupted the assistant": utterance u1`,
		"Barge-in, full duplex: GPT-Live heard the caller talk over it and stopped by itself",
		"has sent all of its answer (2,400 ms)",
	} {
		assert.Contains(t, transcript, want)
	}
	assert.Regexp(t, `openai   has stopped: [\d,]+ ms of its 4,400 ms answer sent`, transcript)
	assert.Regexp(t, `heard [\d,]+ ms of [\d,]+ ms, interrupted`, transcript)
	for _, never := range []string{"speech_started", "conversation.item.truncate", "tokens"} {
		assert.NotContains(t, transcript, never)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parse([]string{"demo"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Greater(t, o.slow, o.inline, "the slow answer misses the inline timeout")

	_, err = parse([]string{"demo", "extra"}, &strings.Builder{})
	assert.ErrorContains(t, err, `unexpected arguments ["extra"]`)
	_, err = parse([]string{"demo", "--inline-timeout", "20s"}, &strings.Builder{})
	assert.ErrorContains(t, err, "--inline-timeout must be positive and below 15s")
	_, err = parse([]string{"demo", "--speech", "gemini"}, &strings.Builder{})
	assert.ErrorContains(t, err, `--speech must be realtime or live (got "gemini")`)
	o, err = parse([]string{"demo", "--speech", "live"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, "live", o.speech)
	_, err = parse([]string{"demo", "--nope"}, &strings.Builder{})
	assert.Error(t, err)
}

func TestRunFailsClearlyWhenItCannotWrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	err := run(context.Background(), []string{"demo", "--dir", filepath.Join(file, "sub")}, &strings.Builder{})
	assert.ErrorContains(t, err, "make the demo directory")
}
