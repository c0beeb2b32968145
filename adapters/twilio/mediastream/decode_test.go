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

// eventTypes are the events Twilio's frames become.
var eventTypes = map[string]ports.CallEventType{
	"start": ports.CallStarted, "media": ports.CallAudio, "mark": ports.CallPlayed,
	"dtmf": ports.CallKey, "stop": ports.CallHungUp,
}

// FuzzDecode checks that no input makes the decoder panic, and that what it
// accepts agrees with encoding/json's reading of the same frame.
func FuzzDecode(f *testing.F) {
	for _, s := range inboundSamples(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"event":"media","media":{"payload":"a\"b\\u0041","timestamp":1}}`))
	f.Add([]byte(`{"event":"mark","mark":{"name":"\u00e9"}, "x":[{"}":"]"}]}`))
	f.Add([]byte(`{"event":"mark","mark":{"name":"m2"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, started := range []bool{false, true} {
			marks := newPlayback()
			for range 3 { // m1, m2 and m3, at 10, 20 and 30 ms
				marks.played(10 * bytesPerMs)
			}
			d := decoder{marks: marks, started: started}
			ev, err := d.decode(b)
			if err != nil {
				continue
			}
			var ref struct {
				Event string `json:"event"`
				Start struct {
					CallSid string `json:"callSid"`
				} `json:"start"`
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
			assert.Equal(t, eventTypes[ref.Event], ev.Type, "event %q", ref.Event)
			switch ev.Type {
			case ports.CallStarted:
				assert.False(t, started, "one start")
				assert.Equal(t, ref.Start.CallSid, ev.Call.CallID)
			case ports.CallAudio:
				require.NotNil(t, ref.Media.Payload)
				assert.Equal(t, *ref.Media.Payload, string(ev.Audio))
				audio, err := base64.StdEncoding.DecodeString(string(ev.Audio))
				assert.NoError(t, err, "accepted media is base64")
				assert.LessOrEqual(t, len(audio), 8000, "of at most a second")
			case ports.CallPlayed:
				seq, ok := markSeq([]byte(ref.Mark.Name))
				require.True(t, ok, "only the channel's marks: %q", ref.Mark.Name)
				assert.Equal(t, int64(10*seq), ev.PlayedMs)
			case ports.CallKey:
				assert.Equal(t, ref.Dtmf.Digit, ev.Key)
			}
			if ev.Type != ports.CallStarted && ev.Type != ports.CallHungUp {
				assert.True(t, started, "%s before the start", ev.Type)
			}
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
	for _, key := range []string{`"event"`, `"start"`, `"callSid"`, `"media"`, `"payload"`, `"mark"`, `"name"`, `"dtmf"`, `"digit"`} {
		if bytes.Count(lower, bytes.ToLower([]byte(key))) != bytes.Count(b, []byte(key)) {
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

// sampleSid is the streamSid of the samples.
const sampleSid = "MZ00000000000000000000000000000000"

func BenchmarkDecodeMedia(b *testing.B) {
	frame := inboundSamples(b)[2]
	d := decoder{marks: newPlayback(), started: true}
	b.ReportAllocs()
	for b.Loop() {
		ev, err := d.decode(frame)
		if err != nil || ev.Type != ports.CallAudio {
			b.Fatal(ev.Type, err)
		}
	}
}

func BenchmarkEncodeMediaAndMark(b *testing.B) {
	d := decoder{marks: newPlayback(), started: true}
	ev, err := d.decode(inboundSamples(b)[2])
	require.NoError(b, err)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendMedia(buf[:0], sampleSid, ev.Audio)
		buf = appendMark(buf[:0], sampleSid, 42)
	}
}

// BenchmarkMarkRoundTrip measures the accounting of one Play's mark: its
// sequence number, its frame, and the decoding of its echo.
func BenchmarkMarkRoundTrip(b *testing.B) {
	d := decoder{marks: newPlayback(), started: true}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		seq := d.marks.played(160)
		buf = appendMark(buf[:0], sampleSid, seq)
		ev, err := d.decode(buf)
		if err != nil || ev.Type != ports.CallPlayed {
			b.Fatal(ev.Type, err)
		}
	}
}
