package realtime

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

var deltaSample = []byte(`{"type":"response.output_audio.delta","event_id":"event_7","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"` +
	base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x55}, 160)) + `"}`)

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
		if err != nil || ev.Type != ports.SpeechAudioDelta || !utf8.Valid(b) || bytes.Contains(bytes.ToLower(b), []byte(`\u`)) {
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
			assert.Equal(t, ref.ItemID, ev.ItemID)
		}
	})
}

func BenchmarkDecodeAudioDelta(b *testing.B) {
	var d decoder
	b.ReportAllocs()
	for b.Loop() {
		ev, err := d.decode(deltaSample)
		if err != nil || ev.Type != ports.SpeechAudioDelta {
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
