package mulaw

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeInvertsEncode(t *testing.T) {
	for i := range 256 {
		b := byte(i)
		if b == 0x7F {
			assert.Zero(t, Decode(b), "negative zero decodes to 0")
			continue
		}
		assert.Equal(t, b, Encode(Decode(b)), "byte %#02x", b)
	}
	assert.Zero(t, Decode(Silence))
	assert.Equal(t, int16(32124), Decode(0x80), "full scale positive")
	assert.Equal(t, int16(-32124), Decode(0x00), "full scale negative")
}

func TestDecodeIsCloseToTheSample(t *testing.T) {
	// mu-law keeps about 13 bits near zero and a relative error of a few
	// percent at full scale.
	for _, s := range []int16{0, 5, -5, 100, -100, 1000, -1000, 8000, -8000, 30000, -30000} {
		got := Decode(Encode(s))
		tol := math.Max(8, math.Abs(float64(s))*0.04)
		assert.InDelta(t, float64(s), float64(got), tol, "sample %d", s)
	}
}

func TestMix(t *testing.T) {
	assert.Equal(t, []int16{1, 2, 3}, Mix([]int16{1, 2, 3}, 1), "mono stays")
	assert.Equal(t, []int16{100, 0, -32768}, Mix([]int16{100, 100, 500, -500, -32768, -32768}, 2),
		"stereo: the mean of each frame, without overflow")
	assert.Equal(t, []int16{2}, Mix([]int16{1, 2, 3, 9}, 3), "a trailing partial frame is dropped")
}

// sine makes n samples of a sine at freq Hz sampled at rate, amplitude amp.
func sine(freq float64, rate, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

// rms is the root mean square of s, skipping edge samples at both ends.
func rms(s []int16, edge int) float64 {
	var sum float64
	s = s[edge : len(s)-edge]
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

func TestResampleKeepsATone(t *testing.T) {
	for _, from := range []int{44100, 48000, 16000, 11025, 4000} {
		in := sine(440, from, from, 10000) // one second
		out := Resample(in, from, Rate)
		require.Len(t, out, Rate, "from %d Hz", from)
		want := sine(440, Rate, Rate, 10000)
		diff := make([]int16, len(out))
		for i := range out {
			diff[i] = out[i] - want[i]
		}
		// Away from the edges, the resampled tone is the tone sampled at
		// 8 kHz, within a small fraction of its level.
		assert.Less(t, rms(diff, 200), 0.01*rms(want, 200), "from %d Hz", from)
	}
}

func TestResampleRemovesWhatEightKilohertzCannotCarry(t *testing.T) {
	// 6 kHz is above 4 kHz, the Nyquist frequency of 8 kHz audio: naive
	// decimation would fold it to a loud 2 kHz alias.
	in := sine(6000, 48000, 48000, 10000)
	out := Resample(in, 48000, Rate)
	assert.Less(t, rms(out, 200), 0.01*rms(in, 200), "the tone is filtered out, not aliased")

	naive := make([]int16, 0, Rate)
	for i := 0; i < len(in); i += 6 {
		naive = append(naive, in[i])
	}
	assert.Greater(t, rms(naive, 200), 0.5*rms(in, 200), "the test tone does alias without filtering")
}

func TestResampleSameRateAndEmpty(t *testing.T) {
	in := []int16{1, -2, 3}
	out := Resample(in, 8000, 8000)
	assert.Equal(t, in, out)
	out[0] = 9
	assert.Equal(t, int16(1), in[0], "a copy")
	assert.Empty(t, Resample(nil, 44100, 8000))
	assert.Panics(t, func() { Resample(in, 0, 8000) })
}

func TestFromPCM(t *testing.T) {
	// Stereo 16 kHz with the tone on the left and its inverse on the
	// right mixes to silence; the same tone on both sides mixes to the
	// tone.
	tone := sine(300, 16000, 1600, 12000)
	opposite := make([]int16, 0, 2*len(tone))
	same := make([]int16, 0, 2*len(tone))
	for _, s := range tone {
		opposite = append(opposite, s, -s)
		same = append(same, s, s)
	}
	quiet := FromPCM(opposite, 16000, 2)
	require.Len(t, quiet, 800, "100 ms at 8 kHz")
	assert.False(t, Voiced(quiet), "left and right cancel")

	loud := FromPCM(same, 16000, 2)
	require.Len(t, loud, 800)
	assert.InDelta(t, rms(sine(300, Rate, 800, 12000), 50), rms(DecodeAll(loud), 50), 12000*0.05)
}
