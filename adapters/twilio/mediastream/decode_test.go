package mediastream

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

func inboundSamples(tb testing.TB) [][]byte {
	tb.Helper()
	f, err := os.Open("testdata/twilio-media-streams-inbound.jsonl")
	require.NoError(tb, err)
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	require.NoError(tb, sc.Err())
	return out
}

// FuzzDecode checks that no input makes the decoder panic, and that what it
// accepts agrees with encoding/json's reading of the same frame.
func FuzzDecode(f *testing.F) {
	for _, s := range inboundSamples(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"event":"media","media":{"payload":"a\"b\\u0041","timestamp":1}}`))
	f.Add([]byte(`{"event":"mark","mark":{"name":"\u00e9"}, "x":[{"}":"]"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d decoder
		ev, err := d.decode(b)
		if err != nil {
			return
		}
		var ref struct {
			Event string `json:"event"`
			Media struct {
				Payload *string `json:"payload"`
			} `json:"media"`
			Mark struct {
				Name string `json:"name"`
			} `json:"mark"`
			Dtmf struct {
				Digit string `json:"digit"`
			} `json:"dtmf"`
		}
		if !comparable(b) || json.Unmarshal(b, &ref) != nil {
			return
		}
		assert.Equal(t, ref.Event, ev.Type.String(), "event name")
		switch ev.Type {
		case ports.CallMedia:
			require.NotNil(t, ref.Media.Payload)
			assert.Equal(t, *ref.Media.Payload, string(ev.Payload))
			audio, err := base64.StdEncoding.DecodeString(string(ev.Payload))
			assert.NoError(t, err, "accepted media is base64")
			assert.LessOrEqual(t, len(audio), 8000, "of at most a second")
		case ports.CallMark:
			assert.Equal(t, ref.Mark.Name, ev.Mark)
		case ports.CallDTMF:
			assert.Equal(t, ref.Dtmf.Digit, ev.Digit)
		}
	})
}

// comparable reports whether encoding/json reads b as the decoder must:
// encoding/json also matches keys case-insensitively and after unescaping,
// and replaces invalid UTF-8, none of which Twilio relies on.
func comparable(b []byte) bool {
	if !utf8.Valid(b) || bytes.Contains(b, []byte(`\u`)) {
		return false
	}
	lower := bytes.ToLower(b)
	for _, key := range []string{`"event"`, `"media"`, `"payload"`, `"mark"`, `"name"`, `"dtmf"`, `"digit"`} {
		if bytes.Count(lower, []byte(key)) != bytes.Count(b, []byte(key)) {
			return false
		}
	}
	return true
}

func TestIsBase64(t *testing.T) {
	for _, s := range []string{"AAAA", "AA==", "AAA=", "+/+/", "chunk000f39/fw==", "/////w=="} {
		assert.True(t, isBase64([]byte(s)), "%q", s)
		_, err := base64.StdEncoding.DecodeString(s)
		assert.NoError(t, err, "%q: encoding/base64 agrees", s)
	}
	for _, s := range []string{"", "A", "AAA", "AAAAA", "A===", "====", "AA=A", "=AAA", "AA-_", "AA\nA", "AA AA", "AA\u0041", "AAA\x00", "AAAA\r\n"} {
		assert.False(t, isBase64([]byte(s)), "%q", s)
	}
}

func BenchmarkDecodeMedia(b *testing.B) {
	frame := inboundSamples(b)[2]
	var d decoder
	b.ReportAllocs()
	for b.Loop() {
		ev, err := d.decode(frame)
		if err != nil || ev.Type != ports.CallMedia {
			b.Fatal(ev.Type, err)
		}
	}
}

func BenchmarkEncodeMediaAndMark(b *testing.B) {
	var d decoder
	ev, err := d.decode(inboundSamples(b)[2])
	require.NoError(b, err)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendMedia(buf[:0], ev.StreamSid, ev.Payload)
		buf = appendMark(buf[:0], ev.StreamSid, "resp_1-item_1-42")
	}
}
