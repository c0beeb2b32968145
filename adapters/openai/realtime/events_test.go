package realtime

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/internal/wsstream"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/testlog"
)

var deltaSample = []byte(`{"type":"response.output_audio.delta","event_id":"event_7","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"` +
	base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x55}, 160)) + `"}`)

// TestDecodeMapsEvents pins the mapping of every server event the port
// carries.
func TestDecodeMapsEvents(t *testing.T) {
	cases := []struct {
		event string
		want  ports.SpeechEvent
	}{
		{`{"type":"response.output_audio.delta","event_id":"e","response_id":"r","item_id":"item_1","output_index":0,"content_index":0,"delta":"AAAA"}`,
			ports.SpeechEvent{Type: ports.SpeechAudio, Utterance: "item_1", Audio: []byte("AAAA")}},
		{`{"type":"response.output_audio.done","event_id":"e","response_id":"r","item_id":"item_1","output_index":0,"content_index":0}`,
			ports.SpeechEvent{Type: ports.SpeechUtteranceDone, Utterance: "item_1"}},
		{`{"type":"input_audio_buffer.speech_started","event_id":"e","item_id":"item_c","audio_start_ms":120}`,
			ports.SpeechEvent{Type: ports.SpeechCallerStarted, Utterance: "item_c"}},
		{`{"type":"input_audio_buffer.speech_stopped","event_id":"e","item_id":"item_c","audio_end_ms":900}`,
			ports.SpeechEvent{Type: ports.SpeechCallerStopped, Utterance: "item_c"}},
		{`{"type":"conversation.item.input_audio_transcription.completed","event_id":"e","item_id":"item_c","content_index":0,"transcript":"Hello?","usage":{"type":"duration","seconds":1}}`,
			ports.SpeechEvent{Type: ports.SpeechCallerText, Utterance: "item_c", Text: "Hello?", Final: true}},
		{`{"type":"response.output_audio_transcript.done","event_id":"e","response_id":"r","item_id":"item_1","output_index":0,"content_index":0,"transcript":"Hi!"}`,
			ports.SpeechEvent{Type: ports.SpeechAssistantText, Utterance: "item_1", Text: "Hi!", Final: true}},
		{`{"type":"response.done","event_id":"e","response":{"id":"r","status":"completed","usage":{"total_tokens":31,"input_tokens":10,"output_tokens":21}}}`,
			ports.SpeechEvent{Type: ports.SpeechUsage, Usage: ports.Usage{InputTokens: 10, OutputTokens: 21, TotalTokens: 31}}},
		{`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"item_not_found","message":"no such item","param":null,"event_id":"client_7"}}`,
			ports.SpeechEvent{Type: ports.SpeechError, Err: &ports.ModelError{Type: "invalid_request_error", Code: "item_not_found", Message: "no such item"}}},
	}
	for _, c := range cases {
		t.Run(c.want.Type.String(), func(t *testing.T) {
			d := decoder{opened: true}
			ev, err := d.decode([]byte(c.event))
			require.NoError(t, err)
			assert.Equal(t, c.want, ev)
			assert.Equal(t, c.want.Type == ports.SpeechError, d.lastWasError)
		})
	}
}

func TestDecodeIgnores(t *testing.T) {
	var logs testlog.Buffer
	d := decoder{opened: true, log: slog.New(slog.NewTextHandler(&logs, nil))}
	for _, e := range []string{
		`{"type":"session.updated","event_id":"e","session":{"type":"realtime"}}`, // after the opening
		`{"type":"response.created","event_id":"e","response":{"id":"r","status":"in_progress"}}`,
		`{"type":"conversation.item.truncated","event_id":"e","item_id":"i","content_index":0,"audio_end_ms":5}`,
		`{"type":"response.done","event_id":"e","response":{"id":"r","status":"failed"}}`, // no usage
	} {
		_, err := d.decode([]byte(e))
		assert.ErrorIs(t, err, wsstream.ErrIgnore, e)
	}
	assert.Contains(t, logs.String(), "model response ended", "a failed response is logged")
	assert.Contains(t, logs.String(), "status=failed")

	// While opening, session.updated is what configure waits for.
	d.opened = false
	ev, err := d.decode([]byte(`{"type":"session.updated","event_id":"e","session":{"type":"realtime"}}`))
	require.NoError(t, err)
	assert.Equal(t, ports.SpeechUnknown, ev.Type)
}

// TestDecodeLogsErrorEventID: the port's ModelError does not carry the id
// of the client event an error concerns; the adapter logs it.
func TestDecodeLogsErrorEventID(t *testing.T) {
	var logs testlog.Buffer
	d := decoder{opened: true, log: slog.New(slog.NewTextHandler(&logs, nil))}
	_, err := d.decode([]byte(`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"bad","message":"m","event_id":"client_7"}}`))
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "event_id=client_7")
	assert.Contains(t, logs.String(), "code=bad")
}

// TestDecodeCountsSpokenAudio: the decoder counts each item's audio, which
// Heard clamps to.
func TestDecodeCountsSpokenAudio(t *testing.T) {
	var d decoder
	delta := func(item string, raw int) {
		b, err := json.Marshal(map[string]string{"type": "response.output_audio.delta", "item_id": item,
			"delta": base64.StdEncoding.EncodeToString(make([]byte, raw))})
		require.NoError(t, err)
		_, err = d.decode(b)
		require.NoError(t, err)
	}
	delta("item_1", 160) // 20 ms
	delta("item_1", 161) // unpadded counts are exact
	delta("item_2", 80)
	delta("item_1", 7)
	n, ok := d.spoken.bytesOf("item_1")
	assert.True(t, ok)
	assert.EqualValues(t, 328, n)
	n, ok = d.spoken.bytesOf("item_2")
	assert.True(t, ok)
	assert.EqualValues(t, 80, n)
	_, ok = d.spoken.bytesOf("item_3")
	assert.False(t, ok)
}

func TestSpokenForgetsOldItems(t *testing.T) {
	var s spoken
	for i := range keepItems + 2 {
		s.item(string(rune('a' + i))).Add(int64(i))
	}
	_, ok := s.bytesOf("a")
	assert.False(t, ok, "the oldest is forgotten")
	_, ok = s.bytesOf("b")
	assert.False(t, ok)
	n, ok := s.bytesOf(string(rune('a' + keepItems + 1)))
	assert.True(t, ok)
	assert.EqualValues(t, keepItems+1, n)
	assert.Len(t, s.bytes, keepItems)
}

func TestDecodedLen(t *testing.T) {
	for n := range 20 {
		raw := bytes.Repeat([]byte{0xAB}, n)
		assert.Equal(t, n, decodedLen([]byte(base64.StdEncoding.EncodeToString(raw))), "padded, %d bytes", n)
		assert.Equal(t, n, decodedLen([]byte(base64.RawStdEncoding.EncodeToString(raw))), "unpadded, %d bytes", n)
	}
}

// FuzzDecode checks that no server event makes the decoder panic, and that
// an audio delta it accepts agrees with encoding/json.
func FuzzDecode(f *testing.F) {
	f.Add(deltaSample)
	f.Add([]byte(`{"type":"response.done","event_id":"e","response":{"id":"r","status":"completed","usage":{"total_tokens":3}}}`))
	f.Add([]byte(`{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":null,"message":"m"}}`))
	f.Add([]byte(`{"type":"input_audio_buffer.speech_started","event_id":"e","item_id":"i","audio_start_ms":9}`))
	f.Add([]byte(`{"type":"response.output_audio.delta","delta":"a\/b","item_id":"\u0041"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d decoder
		ev, err := d.decode(b)
		if err != nil && !errors.Is(err, wsstream.ErrIgnore) && !errors.Is(err, ports.ErrInvalidInput) {
			t.Fatalf("unexpected error: %v", err)
		}
		if err != nil || ev.Type != ports.SpeechAudio || !utf8.Valid(b) || bytes.Contains(bytes.ToLower(b), []byte(`\u`)) {
			return
		}
		var ref struct {
			Delta  *string `json:"delta"`
			ItemID string  `json:"item_id"`
		}
		if json.Unmarshal(b, &ref) != nil || bytes.Count(bytes.ToLower(b), []byte(`"delta"`)) != 1 || bytes.Count(bytes.ToLower(b), []byte(`"item_id"`)) > 1 {
			return // keys encoding/json matches case-insensitively
		}
		require.NotNil(t, ref.Delta)
		assert.Equal(t, *ref.Delta, string(ev.Audio))
		if bytes.Count(b, []byte(`"item_id"`)) == 1 {
			assert.Equal(t, ref.ItemID, ev.Utterance)
		}
	})
}

func BenchmarkDecodeAudioDelta(b *testing.B) {
	var d decoder
	b.ReportAllocs()
	for b.Loop() {
		ev, err := d.decode(deltaSample)
		if err != nil || ev.Type != ports.SpeechAudio {
			b.Fatal(ev.Type, err)
		}
	}
}

func BenchmarkEncodeAppend(b *testing.B) {
	audio := []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xFF}, 160)))
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendAudio(buf[:0], audio)
	}
}
