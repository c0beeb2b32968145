package main

import (
	"bytes"
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func writeFile(t *testing.T, name string, write func(f *os.File) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, write(f))
	require.NoError(t, f.Close())
	return path
}

// TestCallWithMulawWAV: the WAV is streamed byte for byte, the assistant's
// answer is played, recorded and reported, progress is shown, the call
// hangs up, and the auth token appears nowhere.
func TestCallWithMulawWAV(t *testing.T) {
	e := newEnv(t, nil)
	speech := mulaw.Tone(300, 600)
	wav := writeFile(t, "hello.wav", func(f *os.File) error { return mulaw.WriteWAV(f, speech) })
	rec := filepath.Join(t.TempDir(), "heard.wav")

	out, err := callsim(t, "--url", e.base, "--auth-token", testToken, "--wav", wav, "--record", rec,
		"--linger", "1s", "--progress", "100ms")
	require.NoError(t, err, out)
	t.Log("\n" + out)

	for _, want := range []string{
		"POST " + e.base + "/incoming-call (signed for " + e.base + "/incoming-call)",
		`<Connect><Stream url="ws://` + strings.TrimPrefix(e.base, "http://") + `/media-stream"> with <Parameter> from (12 chars), to (12 chars), token (`,
		"saying " + wav + ": 600 ms of mu-law, 8000 Hz, mono, as it is",
		"call ended after",
		"the assistant answered and was quiet for 1s; hung up (stop)",
		"first audio ",
		"received    600 ms of assistant audio in 30 media frames; 600 ms played",
		"marks       30 sent by the gateway: 30 played, 0 flushed by a clear",
		"clears      0",
		"recording   " + rec + " (600 ms of what the caller heard)",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotEmpty(t, lines(out, "] sent "), "progress lines during the call")
	assert.NotContains(t, out, testToken)

	heard := e.callerAudio(t)
	require.GreaterOrEqual(t, len(heard), len(speech))
	assert.Equal(t, speech, heard[:len(speech)], "the mu-law WAV reached the model untouched")
	assert.False(t, mulaw.Voiced(heard[len(speech):]), "then silence, as Twilio streams during a call")

	f, err := os.Open(rec)
	require.NoError(t, err)
	defer f.Close()
	w, err := mulaw.ReadWAV(f)
	require.NoError(t, err)
	assert.Equal(t, reply, w.Data, "the recording is the assistant's answer as played")
	require.Eventually(t, func() bool { return strings.Contains(e.logs.String(), `"end_reason":"caller_hangup"`) },
		testWait, 10*time.Millisecond, "the gateway saw the caller hang up")
}

// TestCallWithPCMWAV: a 16-bit stereo 44.1 kHz WAV is mixed, resampled and
// encoded before it is streamed.
func TestCallWithPCMWAV(t *testing.T) {
	e := newEnv(t, nil)
	const rate = 44100
	samples := make([]int16, 0, 2*rate*6/10)
	for i := range rate * 6 / 10 { // 600 ms of 300 Hz, the same on both channels
		v := int16(12000 * math.Sin(2*math.Pi*300*float64(i)/rate))
		samples = append(samples, v, v)
	}
	wav := writeFile(t, "hello.wav", func(f *os.File) error { return mulaw.WritePCM16WAV(f, rate, 2, samples) })

	out, err := callsim(t, "--url", e.base, "--auth-token", testToken, "--wav", wav, "--linger", "500ms")
	require.NoError(t, err, out)
	assert.Contains(t, out, "600 ms of 16-bit PCM, 44100 Hz, 2 channels, converted to 8 kHz mono mu-law")
	assert.Contains(t, out, "marks       30 sent by the gateway: 30 played")

	want := mulaw.FromPCM(samples, rate, 2)
	require.Len(t, want, 4800)
	heard := e.callerAudio(t)
	require.GreaterOrEqual(t, len(heard), len(want))
	assert.Equal(t, want, heard[:len(want)], "the converted audio reached the model")
}

// TestCallOfSilence: without --wav the caller says nothing for --duration,
// and the report says no audio came.
func TestCallOfSilence(t *testing.T) {
	e := newEnv(t, nil)
	out, err := callsim(t, "--url", e.base, "--auth-token", testToken, "--duration", "400ms", "--progress", "0")
	require.NoError(t, err, out)
	assert.Contains(t, out, "--duration 400ms reached; hung up (stop)")
	assert.Contains(t, out, "first audio none: the assistant sent no audio")
	assert.Empty(t, lines(out, "] sent "), "--progress 0 prints none")
	heard := e.callerAudio(t)
	assert.NotEmpty(t, heard)
	assert.False(t, mulaw.Voiced(heard))
}

// TestInterruptHangsUp: cancelling the context (Ctrl-C) during a call
// hangs up properly: the gateway sees the caller's stop.
func TestInterruptHangsUp(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Interrupt once the call is under way: its session receives audio.
		for ctx.Err() == nil {
			if sessions := e.rt.Sessions(); len(sessions) > 0 && sessions[0].Frames() >= 5 {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var out testlog.Buffer
	err := run(ctx, []string{"callsim", "--url", e.base, "--auth-token", testToken, "--duration", "1m"}, &out)
	require.NoError(t, err, out.String())
	assert.Contains(t, out.String(), "interrupted; hung up (stop)")
	require.Eventually(t, func() bool { return strings.Contains(e.logs.String(), `"end_reason":"caller_hangup"`) },
		testWait, 10*time.Millisecond, "the gateway saw the caller hang up")
}

func TestWhatsAppInline(t *testing.T) {
	e := newEnv(t, nil)
	out, err := callsim(t, "--url", e.base, "--auth-token", testToken, "--whatsapp", "Hi there", "--from", "+15551112222")
	require.NoError(t, err, out)
	assert.Contains(t, out, "From whatsapp:+15551112222, To whatsapp:+14155238886")
	assert.Contains(t, out, "the reply inline (1 <Message>):\n  \"echo: Hi there\"")
	assert.NotContains(t, out, testToken)
}

// TestWhatsAppLater: an answer slower than REPLY_INLINE_TIMEOUT gets an
// empty TwiML, which callsim explains; the gateway then sends it through
// the REST API.
func TestWhatsAppLater(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.ReplyInlineTimeout = 50 * time.Millisecond })
	e.openai.SetDelay(time.Second)
	out, err := callsim(t, "--url", e.base, "--auth-token", testToken, "--whatsapp", "Slow one")
	require.NoError(t, err, out)
	assert.Contains(t, out, "an empty <Response/>")
	assert.Contains(t, out, "through the Twilio Messages REST API, from whatsapp:+14155238886 to whatsapp:+15555550100")
	require.Eventually(t, func() bool { return len(e.twilio.Messages()) == 1 }, testWait, 10*time.Millisecond)
	assert.Equal(t, "echo: Slow one", e.twilio.Messages()[0].Body)
}

// TestWrongAuthToken: a 403 is explained (auth token or PUBLIC_URL), for a
// call and a message, and no token is printed.
func TestWrongAuthToken(t *testing.T) {
	e := newEnv(t, nil)
	const wrong = "not0the0right0token0000000000000"
	for _, mode := range [][]string{nil, {"--whatsapp", "Hi"}} {
		out, err := callsim(t, append([]string{"--url", e.base, "--auth-token", wrong}, mode...)...)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "answered 403 Forbidden: the gateway rejected the X-Twilio-Signature")
		assert.Contains(t, err.Error(), "the auth token is not the gateway's TWILIO_AUTH_TOKEN")
		assert.Contains(t, err.Error(), "or the gateway's PUBLIC_URL is not "+e.base+"/")
		for _, secret := range []string{wrong, testToken} {
			assert.NotContains(t, out+err.Error(), secret)
		}
	}
	assert.Nil(t, e.rt.Sessions(), "no call was answered")
}

// TestPublicURLMismatch: signing for another URL than the gateway's
// PUBLIC_URL is a 403 that names the URL signed.
func TestPublicURLMismatch(t *testing.T) {
	e := newEnv(t, nil)
	_, err := callsim(t, "--url", e.base, "--public-url", "https://gw.example.com", "--auth-token", testToken)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "403 Forbidden")
	assert.Contains(t, err.Error(), "PUBLIC_URL is not https://gw.example.com/incoming-call")
}

func TestRejectedCall(t *testing.T) {
	e := newEnv(t, func(c *configs.Config) { c.AllowedNumbers = []string{"+15550000001"} })
	_, err := callsim(t, "--url", e.base, "--auth-token", testToken, "--from", "+15559999999")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the gateway rejected the call (<Reject/>): +15559999999 is not on its ALLOWED_NUMBERS")
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = callsim(t, "--url", "http://"+addr, "--auth-token", testToken)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot connect to http://"+addr+"/incoming-call: connection refused. Is the gateway running and listening there?")
}

func TestUnsupportedWAV(t *testing.T) {
	e := newEnv(t, nil)
	var b bytes.Buffer
	require.NoError(t, mulaw.WritePCM16WAV(&b, 8000, 1, []int16{1, 2}))
	data := b.Bytes()
	data[34] = 24 // bits per sample
	wav := writeFile(t, "deep.wav", func(f *os.File) error { _, err := f.Write(data); return err })
	_, err := callsim(t, "--url", e.base, "--auth-token", testToken, "--wav", wav)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "24-bit PCM, 8000 Hz, mono audio is not supported")
	assert.Contains(t, err.Error(), "ffmpeg")
	assert.Nil(t, e.rt.Sessions(), "nothing was called")
}

func TestParse(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	var out strings.Builder

	_, err := parse([]string{"callsim"}, getenv, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--url is required")
	assert.Contains(t, err.Error(), "no auth token: pass --auth-token or set TWILIO_AUTH_TOKEN")

	for _, bad := range []string{"gw.example.com", "ftp://gw.example.com", "https://"} {
		_, err = parse([]string{"callsim", "--url", bad, "--auth-token", "x"}, getenv, &out)
		assert.ErrorContains(t, err, "is not a base URL", bad)
	}
	_, err = parse([]string{"callsim", "--url", "https://gw.example.com/incoming-call", "--auth-token", "x"}, getenv, &out)
	assert.ErrorContains(t, err, "give the base URL only")

	env["TWILIO_AUTH_TOKEN"] = "from-the-environment"
	o, err := parse([]string{"callsim", "--url", "https://gw.example.com/", "--whatsapp", "hi"}, getenv, &out)
	require.NoError(t, err)
	assert.Equal(t, "from-the-environment", o.authToken)
	assert.Equal(t, "https://gw.example.com", o.url)
	assert.Equal(t, o.url, o.publicURL)
	assert.Equal(t, "whatsapp:+15555550100", o.from)
	assert.Equal(t, "whatsapp:+14155238886", o.to)

	_, err = parse([]string{"callsim", "--url", "https://gw.example.com", "--whatsapp", "hi", "--wav", "a.wav"}, getenv, &out)
	assert.ErrorContains(t, err, "--whatsapp sends a message")
	assert.NotContains(t, out.String(), "from-the-environment")
}
