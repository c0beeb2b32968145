package audio

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// formats are the six formats a Transcoder converts between.
var formats = func() []ports.AudioFormat {
	var out []ports.AudioFormat
	for _, enc := range []ports.AudioEncoding{ports.EncodingPCMU, ports.EncodingPCM16} {
		for _, rate := range []int{8000, 16000, 24000} {
			out = append(out, ports.AudioFormat{Encoding: enc, SampleRate: rate})
		}
	}
	return out
}()

func formatName(f ports.AudioFormat) string {
	return fmt.Sprintf("%s_%dk", f.Encoding, f.SampleRate/1000)
}

// formatPairs calls fn for every two different formats, in a subtest.
func formatPairs(t *testing.T, fn func(t *testing.T, from, to ports.AudioFormat)) {
	for _, from := range formats {
		for _, to := range formats {
			if from != to {
				t.Run(formatName(from)+"-"+formatName(to), func(t *testing.T) { fn(t, from, to) })
			}
		}
	}
}

func newTranscoder(t testing.TB, from, to ports.AudioFormat) ports.Transcoder {
	t.Helper()
	tc, err := NewTranscoder(from, to)
	require.NoError(t, err)
	return tc
}

// encodeAs is samples in format f's encoding (raw, not base64).
func encodeAs(f ports.AudioFormat, samples []int16) []byte {
	if f.Encoding == ports.EncodingPCMU {
		return AppendMulaw(nil, samples)
	}
	return AppendPCM16(nil, samples)
}

// decodeFrom is the samples of raw audio in format f's encoding.
func decodeFrom(f ports.AudioFormat, raw []byte) []int16 {
	if f.Encoding == ports.EncodingPCMU {
		return AppendLinearFromMulaw(nil, raw)
	}
	return AppendLinearFromPCM16(nil, raw)
}

// transcoded is what a Transcoder from from to to should make of raw
// audio, by the package's codecs and a Resampler over the whole signal.
func transcoded(t *testing.T, from, to ports.AudioFormat, raw []byte) []byte {
	samples := decodeFrom(from, raw)
	if from.SampleRate != to.SampleRate {
		samples = newResampler(t, from.SampleRate, to.SampleRate).Resample(nil, samples)
	}
	return encodeAs(to, samples)
}

func b64(raw []byte) []byte { return base64.StdEncoding.AppendEncode(nil, raw) }

func unb64(t testing.TB, s []byte) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.AppendDecode(nil, s)
	require.NoError(t, err, "the output is base64")
	return raw
}

func TestNewTranscoderRejectsUnsupportedFormats(t *testing.T) {
	bad := []ports.AudioFormat{
		{},
		{Encoding: ports.EncodingPCM16, SampleRate: 44100},
		{Encoding: ports.EncodingPCMU, SampleRate: 0},
		{Encoding: "opus", SampleRate: 24000},
	}
	for _, f := range bad {
		for _, pair := range [][2]ports.AudioFormat{{f, ports.Mulaw8k}, {ports.Mulaw8k, f}, {f, f}} {
			_, err := NewTranscoder(pair[0], pair[1])
			assert.ErrorIs(t, err, ports.ErrInvalidInput, "%s to %s", pair[0], pair[1])
		}
	}
}

// Between two sides of one format audio passes through as it is, even
// what is not audio: checking it is the channels' business.
func TestTranscoderPassesTheSameFormatThrough(t *testing.T) {
	for _, f := range formats {
		tc := newTranscoder(t, f, f)
		for _, src := range []string{"", "//79/w==", "not base64!", "AA=="} {
			out, err := tc.Transcode([]byte("head:"), []byte(src))
			require.NoError(t, err)
			assert.Equal(t, "head:"+src, string(out), "%s: %q", f, src)
		}
	}
}

// Every chunk comes out as the package's codecs and resampler make of it,
// the resampler's history carried from chunk to chunk: a signal
// transcoded in chunks of random sizes (empty ones and single samples
// among them) gives exactly what transcoding it whole gives, each chunk
// as many samples as the rates say.
func TestTranscodeInChunksEqualsTheStagesOverTheWhole(t *testing.T) {
	formatPairs(t, func(t *testing.T, from, to ports.AudioFormat) {
		signal := noise(uint64(from.SampleRate+to.SampleRate), from.SampleRate/4) // 250 ms
		raw := encodeAs(from, signal)
		want := transcoded(t, from, to, raw)

		tc := newTranscoder(t, from, to)
		whole, err := tc.Transcode([]byte("head:"), b64(raw))
		require.NoError(t, err)
		require.Equal(t, "head:", string(whole[:5]), "appended to dst")
		assert.Equal(t, want, unb64(t, whole[5:]), "whole")

		rng := rand.New(rand.NewPCG(2, uint64(from.SampleRate)))
		tc = newTranscoder(t, from, to)
		var chunked []byte
		size := from.BytesPerSample()
		for fed := 0; fed < len(signal); {
			n := min(len(signal)-fed, []int{0, 1, 2, 3, rng.IntN(60), rng.IntN(500)}[rng.IntN(6)])
			out, err := tc.Transcode(nil, b64(raw[fed*size:(fed+n)*size]))
			require.NoError(t, err)
			got := unb64(t, out)
			wantSamples := n
			if from.SampleRate != to.SampleRate {
				wantSamples = ceilDiv((fed+n)*to.SampleRate, from.SampleRate) - ceilDiv(fed*to.SampleRate, from.SampleRate)
			}
			require.Len(t, got, wantSamples*to.BytesPerSample(), "chunk of %d samples after %d", n, fed)
			chunked = append(chunked, got...)
			fed += n
		}
		assert.Equal(t, want, chunked, "in chunks")
	})
}

// A telephone tone reaches a 24 kHz PCM16 model as the same tone, and a
// model's tone above 4 kHz does not come back to the caller as a false
// one below it.
func TestTranscodeTelephoneAudio(t *testing.T) {
	pcm24k := ports.AudioFormat{Encoding: ports.EncodingPCM16, SampleRate: 24000}
	const amp = 16000.0

	up := newTranscoder(t, ports.Mulaw8k, pcm24k)
	out, err := up.Transcode(nil, b64(AppendMulaw(nil, sine(1000, 8000, 4000, amp))))
	require.NoError(t, err)
	heard := decodeFrom(pcm24k, unb64(t, out))
	require.Len(t, heard, 12000)
	steady := heard[1000:]
	assert.InDelta(t, 0, decibels(amplitudeAt(steady, 1000, 24000)/amp), 0.5, "1 kHz from the caller keeps its level, dB")
	assert.InEpsilon(t, 1000, zeroCrossingFrequency(steady, 24000), 0.002, "and its frequency")

	for _, tone := range []struct {
		freq, want float64 // Hz; amplitude in dB at freq, or at 8000-freq for a tone above 4 kHz
	}{{1000, 0}, {6000, math.Inf(-1)}, {4300, math.Inf(-1)}} {
		down := newTranscoder(t, pcm24k, ports.Mulaw8k)
		out, err := down.Transcode(nil, b64(AppendPCM16(nil, sine(tone.freq, 24000, 12000, amp))))
		require.NoError(t, err)
		heard := decodeFrom(ports.Mulaw8k, unb64(t, out))
		require.Len(t, heard, 4000)
		steady := heard[500:]
		if tone.freq < 4000 {
			assert.InDelta(t, 0, decibels(amplitudeAt(steady, tone.freq, 8000)/amp), 0.5, "%g Hz to the caller keeps its level, dB", tone.freq)
			continue
		}
		alias := decibels(amplitudeAt(steady, 8000-tone.freq, 8000) / amp)
		assert.Less(t, alias, -40.0, "%g Hz from the model folds to %g Hz, dB", tone.freq, 8000-tone.freq)
	}
}

// A chunk that is not base64, or not whole samples, is refused with
// ErrInvalidInput and changes nothing: dst comes back as it was and the
// stream goes on as if the chunk had not come.
func TestTranscodeRefusesABadChunkAndChangesNothing(t *testing.T) {
	pcm16k := ports.AudioFormat{Encoding: ports.EncodingPCM16, SampleRate: 16000}
	cases := []struct {
		name     string
		from, to ports.AudioFormat
		chunk    string
	}{
		{"not base64", ports.Mulaw8k, pcm16k, "not base64!"},
		{"unpadded", ports.Mulaw8k, pcm16k, "AAA"},
		{"url alphabet", pcm16k, ports.Mulaw8k, "AA-_"},
		{"three PCM16 bytes", pcm16k, ports.Mulaw8k, "AAAA"},
		{"one PCM16 byte", pcm16k, ports.Mulaw8k, "AA=="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := b64(encodeAs(tc.from, sine(700, tc.from.SampleRate, 333, 9000)))
			second := b64(encodeAs(tc.from, sine(900, tc.from.SampleRate, 250, 9000)))

			clean := newTranscoder(t, tc.from, tc.to)
			want, err := clean.Transcode(nil, first)
			require.NoError(t, err)
			want, err = clean.Transcode(want, second)
			require.NoError(t, err)

			tr := newTranscoder(t, tc.from, tc.to)
			got, err := tr.Transcode(nil, first)
			require.NoError(t, err)
			before := string(got)
			got, err = tr.Transcode(got, []byte(tc.chunk))
			require.ErrorIs(t, err, ports.ErrInvalidInput)
			assert.Equal(t, before, string(got), "dst comes back as it was")
			got, err = tr.Transcode(got, second)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got), "the stream goes on as if the bad chunk had not come")
		})
	}
}

func TestTranscodeDoesNotAllocateOnceWarm(t *testing.T) {
	formatPairs(t, func(t *testing.T, from, to ports.AudioFormat) {
		tc := newTranscoder(t, from, to)
		chunk := b64(encodeAs(from, sine(440, from.SampleRate, from.SampleRate/50, 8000))) // 20 ms
		dst := make([]byte, 0, 4096)
		_, err := tc.Transcode(dst, chunk)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(100, func() { dst, err = tc.Transcode(dst[:0], chunk) })
		require.NoError(t, err)
		assert.Zero(t, allocs)
	})
}

// FuzzTranscode feeds any bytes, in two chunks, between any two formats:
// a Transcoder never panics, and each chunk either is refused with
// ErrInvalidInput (exactly when it is not base64 of whole samples) or
// gives base64 of as many samples as the rates say.
func FuzzTranscode(f *testing.F) {
	f.Add(uint8(0), uint8(5), []byte{0xFF, 0x7F, 0x00, 0x80}, uint16(1), true)
	f.Add(uint8(5), uint8(0), []byte{1, 2, 3, 4, 5, 6}, uint16(3), true)
	f.Add(uint8(4), uint8(0), []byte("AAAA!!"), uint16(4), false)
	f.Add(uint8(2), uint8(2), []byte("AA=="), uint16(0), false)
	f.Fuzz(func(t *testing.T, fromIdx, toIdx uint8, data []byte, split uint16, asBase64 bool) {
		from, to := formats[int(fromIdx)%len(formats)], formats[int(toIdx)%len(formats)]
		tc, err := NewTranscoder(from, to)
		require.NoError(t, err)
		at := int(split) % (len(data) + 1)
		chunks := [][]byte{data[:at], data[at:]}
		if asBase64 {
			chunks = [][]byte{b64(data[:at]), b64(data[at:])}
		}
		fed := 0 // samples taken so far
		for _, chunk := range chunks {
			out, err := tc.Transcode([]byte("dst"), chunk)
			if from == to {
				require.NoError(t, err)
				require.Equal(t, "dst"+string(chunk), string(out))
				continue
			}
			raw, decodeErr := base64.StdEncoding.DecodeString(string(chunk))
			if decodeErr != nil || len(raw)%from.BytesPerSample() != 0 {
				require.ErrorIs(t, err, ports.ErrInvalidInput)
				require.Equal(t, "dst", string(out))
				continue
			}
			require.NoError(t, err)
			n := len(raw) / from.BytesPerSample()
			want := n
			if from.SampleRate != to.SampleRate {
				want = ceilDiv((fed+n)*to.SampleRate, from.SampleRate) - ceilDiv(fed*to.SampleRate, from.SampleRate)
			}
			fed += n
			require.Equal(t, "dst", string(out[:3]))
			require.Len(t, unb64(t, out[3:]), want*to.BytesPerSample())
		}
	})
}

func BenchmarkTranscode(b *testing.B) {
	mulaw8k := ports.Mulaw8k
	pcm16k := ports.AudioFormat{Encoding: ports.EncodingPCM16, SampleRate: 16000}
	pcm24k := ports.AudioFormat{Encoding: ports.EncodingPCM16, SampleRate: 24000}
	for _, pair := range [][2]ports.AudioFormat{
		{mulaw8k, pcm24k}, {pcm24k, mulaw8k}, {pcm16k, mulaw8k}, {mulaw8k, pcm16k}, {mulaw8k, mulaw8k},
	} {
		from, to := pair[0], pair[1]
		b.Run(formatName(from)+"-"+formatName(to), func(b *testing.B) {
			tc := newTranscoder(b, from, to)
			// 20 ms of a vowel-like buzz: a few harmonics of 140 Hz.
			samples := make([]int16, from.SampleRate/50)
			for i := range samples {
				t := float64(i) / float64(from.SampleRate)
				v := 0.0
				for h := 1.0; h <= 20; h++ {
					v += math.Sin(2*math.Pi*140*h*t) / h
				}
				samples[i] = int16(4000 * v)
			}
			chunk := b64(encodeAs(from, samples))
			dst := make([]byte, 0, 4096)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := tc.Transcode(dst[:0], chunk)
				if err != nil || len(out) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewTranscoder(b *testing.B) {
	pcm24k := ports.AudioFormat{Encoding: ports.EncodingPCM16, SampleRate: 24000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewTranscoder(ports.Mulaw8k, pcm24k); err != nil {
			b.Fatal(err)
		}
	}
}
