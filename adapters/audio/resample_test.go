package audio

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// ratePairs are the six directions a Resampler converts.
var ratePairs = [][2]int{
	{8000, 16000}, {8000, 24000}, {16000, 8000}, {24000, 8000}, {16000, 24000}, {24000, 16000},
}

func pairName(from, to int) string { return fmt.Sprintf("%dk-%dk", from/1000, to/1000) }

func newResampler(t testing.TB, from, to int) *Resampler {
	t.Helper()
	r, err := NewResampler(from, to)
	require.NoError(t, err)
	return r
}

// sine is n samples of amp·sin(2π·freq·t) at rate, t counting from 0.
func sine(freq float64, rate, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// noise is n random samples over the whole 16-bit range.
func noise(seed uint64, n int) []int16 {
	rng := rand.New(rand.NewPCG(seed, seed))
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(rng.IntN(1 << 16))
	}
	return out
}

// amplitudeAt is the amplitude of the frequency freq in x (sampled at
// rate): one bin of a Hann-windowed discrete Fourier transform, which is
// what a Goertzel filter computes. The window keeps a strong tone a few
// hundred hertz away from leaking into the bin.
func amplitudeAt(x []int16, freq float64, rate int) float64 {
	var re, im, wsum float64
	n := len(x)
	for i, v := range x {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
		s, c := math.Sincos(2 * math.Pi * freq * float64(i) / float64(rate))
		re += w * float64(v) * c
		im -= w * float64(v) * s
		wsum += w
	}
	return 2 * math.Hypot(re, im) / wsum
}

// zeroCrossingFrequency estimates the frequency of the tone in x (sampled
// at rate) from the times of its first and last upward zero crossings,
// interpolated between samples.
func zeroCrossingFrequency(x []int16, rate int) float64 {
	var first, last float64
	crossings := 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			at := float64(i-1) + float64(-x[i-1])/float64(int(x[i])-int(x[i-1]))
			if crossings == 0 {
				first = at
			}
			last = at
			crossings++
		}
	}
	if crossings < 2 {
		return 0
	}
	return float64(crossings-1) / (last - first) * float64(rate)
}

func decibels(ratio float64) float64 { return 20 * math.Log10(ratio) }

// ceilDiv is ceil(a/b) for a >= 0, b > 0.
func ceilDiv(a, b int) int { return (a + b - 1) / b }

func TestNewResamplerRejectsUnsupportedRates(t *testing.T) {
	for _, rates := range [][2]int{{8000, 8000}, {44100, 8000}, {8000, 48000}, {0, 8000}, {-8000, 16000}, {12000, 24000}} {
		_, err := NewResampler(rates[0], rates[1])
		assert.ErrorIs(t, err, ports.ErrInvalidInput, "%v", rates)
	}
}

// The delays are those the package documentation lists.
func TestResamplerDelays(t *testing.T) {
	want := map[[2]int]int{
		{8000, 16000}: 67, {8000, 24000}: 101, {16000, 8000}: 34,
		{24000, 8000}: 34, {16000, 24000}: 51, {24000, 16000}: 34,
	}
	for _, p := range ratePairs {
		assert.Equal(t, want[p], newResampler(t, p[0], p[1]).Delay(), pairName(p[0], p[1]))
	}
}

// The filter each Resampler designs meets what the package promises: flat
// to within 0.002 dB up to 85% of the lower Nyquist frequency and at least
// 79 dB down from that Nyquist frequency up (the frequency response of
// its coefficients, measured every 5 Hz).
func TestResamplerFilterResponse(t *testing.T) {
	for _, p := range ratePairs {
		t.Run(pairName(p[0], p[1]), func(t *testing.T) {
			r := newResampler(t, p[0], p[1])
			// The prototype, back from its phases: phase q's coefficient
			// taps-1-k is tap q+k*up.
			proto := make([]float64, r.taps*r.up)
			for q, row := range r.phases {
				for k := range r.taps {
					proto[q+k*r.up] = float64(row[r.taps-1-k])
				}
			}
			rate := float64(p[0] * r.up)
			gain := func(f float64) float64 {
				var re, im float64
				for j, h := range proto {
					s, c := math.Sincos(2 * math.Pi * f * float64(j) / rate)
					re += h * c
					im -= h * s
				}
				return decibels(math.Hypot(re, im) / float64(r.up))
			}
			nyquist := float64(min(p[0], p[1])) / 2
			for f := 0.0; f <= passBand*nyquist; f += 5 {
				require.InDelta(t, 0, gain(f), 0.002, "pass band, %g Hz", f)
			}
			for f := nyquist; f <= rate/2; f += 5 {
				require.Less(t, gain(f), -79.0, "stop band, %g Hz", f)
			}
		})
	}
}

// A signal converted in chunks of random sizes (empty ones and single
// samples among them) comes out exactly as converted whole, and each call
// brings the output to ceil(n*to/from) samples for the n samples so far.
func TestResampleInChunksEqualsWhole(t *testing.T) {
	for _, p := range ratePairs {
		t.Run(pairName(p[0], p[1]), func(t *testing.T) {
			in := noise(uint64(p[0]+p[1]), 5000)
			whole := newResampler(t, p[0], p[1]).Resample(nil, in)
			require.Len(t, whole, ceilDiv(len(in)*p[1], p[0]))

			rng := rand.New(rand.NewPCG(1, uint64(p[0])))
			r := newResampler(t, p[0], p[1])
			var chunked []int16
			for fed := 0; fed < len(in); {
				n := min(len(in)-fed, []int{0, 1, 2, 3, rng.IntN(50), rng.IntN(700)}[rng.IntN(6)])
				chunked = r.Resample(chunked, in[fed:fed+n])
				fed += n
				require.Len(t, chunked, ceilDiv(fed*p[1], p[0]), "after %d samples", fed)
			}
			assert.Equal(t, whole, chunked)
		})
	}
}

// A tone well inside the pass band keeps its amplitude and its frequency,
// and comes out Delay() output samples late: the output matches the tone
// sampled at the output rate, Delay() samples later, to within 16-bit
// rounding.
func TestResampleKeepsPassBandTonesInTime(t *testing.T) {
	const amp = 16000.0
	for _, p := range ratePairs {
		for _, freq := range []float64{300, 1000, 3000} {
			t.Run(fmt.Sprintf("%s/%gHz", pairName(p[0], p[1]), freq), func(t *testing.T) {
				r := newResampler(t, p[0], p[1])
				out := r.Resample(nil, sine(freq, p[0], p[0]/2, amp)) // 500 ms
				d := r.Delay()
				steady := out[2*d : len(out)-d]

				gain := decibels(amplitudeAt(steady, freq, p[1]) / amp)
				assert.InDelta(t, 0, gain, 0.5, "amplitude within 0.5 dB")
				assert.InEpsilon(t, freq, zeroCrossingFrequency(steady, p[1]), 0.002, "frequency")

				var errSum, sigSum float64
				for n := 2 * d; n < len(out); n++ {
					want := amp * math.Sin(2*math.Pi*freq*float64(n-d)/float64(p[1]))
					errSum += (float64(out[n]) - want) * (float64(out[n]) - want)
					sigSum += want * want
				}
				snr := -decibels(math.Sqrt(errSum / sigSum))
				assert.Greater(t, snr, 60.0, "output against the tone %d samples later, dB", d)
			})
		}
	}
}

// A tone that the lower rate cannot carry is removed instead of folding
// back: going down, a tone above the output's Nyquist frequency; going
// up, the images of a tone above the input's.
func TestResampleRejectsAliasesAndImages(t *testing.T) {
	const amp = 16000.0
	cases := []struct {
		from, to int
		tone     float64
		measure  []float64 // where what is left would show at the output rate
	}{
		{24000, 8000, 6000, []float64{2000}},
		{24000, 8000, 4300, []float64{3700}},
		{24000, 8000, 4050, []float64{3950}}, // just past the transition band
		{16000, 8000, 5000, []float64{3000}},
		{24000, 16000, 10000, []float64{6000}},
		{8000, 16000, 1000, []float64{7000}},
		{8000, 24000, 1000, []float64{7000, 9000}},
		{16000, 24000, 1000, []float64{7000, 9000}}, // the images at 15 and 17 kHz fold about 12 kHz
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%gHz", pairName(tc.from, tc.to), tc.tone), func(t *testing.T) {
			r := newResampler(t, tc.from, tc.to)
			out := r.Resample(nil, sine(tc.tone, tc.from, tc.from/2, amp))
			steady := out[2*r.Delay():]
			for _, f := range tc.measure {
				level := decibels(amplitudeAt(steady, f, tc.to) / amp)
				assert.Less(t, level, -40.0, "what is left at %g Hz, dB", f)
			}
		})
	}
}

// A constant comes out unchanged at every phase once the filter is full.
func TestResampleKeepsAConstant(t *testing.T) {
	for _, p := range ratePairs {
		for _, level := range []int16{1000, math.MaxInt16, math.MinInt16} {
			r := newResampler(t, p[0], p[1])
			in := make([]int16, 2000)
			for i := range in {
				in[i] = level
			}
			out := r.Resample(nil, in)
			for n := 2 * r.Delay(); n < len(out); n++ {
				require.Equal(t, level, out[n], "%s: sample %d", pairName(p[0], p[1]), n)
			}
		}
	}
}

// A full-scale square wave overshoots at its edges (the filter's ringing):
// the output is what the same wave at half the amplitude gives, doubled,
// and clipped to the 16-bit range, not wrapped around.
func TestResampleClipsOvershoot(t *testing.T) {
	for _, p := range ratePairs {
		full, half := make([]int16, 4000), make([]int16, 4000)
		for i := range full {
			full[i], half[i] = math.MaxInt16, math.MaxInt16/2
			if i/400%2 == 1 {
				full[i], half[i] = math.MinInt16, math.MinInt16/2
			}
		}
		outFull := newResampler(t, p[0], p[1]).Resample(nil, full)
		outHalf := newResampler(t, p[0], p[1]).Resample(nil, half)
		clipped := 0
		for n := range outFull {
			doubled := 2 * int(outHalf[n])
			want := min(max(doubled, math.MinInt16), math.MaxInt16)
			if want != doubled {
				clipped++
			}
			require.InDelta(t, want, int(outFull[n]), 3, "%s: sample %d", pairName(p[0], p[1]), n)
		}
		assert.Positive(t, clipped, "%s: the overshoot goes past the 16-bit range", pairName(p[0], p[1]))
	}
}

func TestToInt16RoundsAndClips(t *testing.T) {
	cases := []struct {
		in   float32
		want int16
	}{
		{0, 0}, {0.49, 0}, {0.5, 1}, {-0.5, -1}, {-0.49, 0}, {1.5, 2}, {-1.5, -2},
		{32766.6, 32767}, {32767, 32767}, {40000, 32767}, {-32767.6, -32768}, {-32768, -32768}, {-40000, -32768},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, toInt16(tc.in), "%v", tc.in)
	}
}

func TestResampleDoesNotAllocateOnceWarm(t *testing.T) {
	for _, p := range ratePairs {
		r := newResampler(t, p[0], p[1])
		in := noise(7, p[0]/50) // 20 ms
		out := make([]int16, 0, p[1]/50+1)
		r.Resample(out, in)
		allocs := testing.AllocsPerRun(100, func() { out = r.Resample(out[:0], in) })
		assert.Zero(t, allocs, pairName(p[0], p[1]))
	}
}

func BenchmarkResample(b *testing.B) {
	for _, p := range ratePairs {
		b.Run(pairName(p[0], p[1]), func(b *testing.B) {
			r := newResampler(b, p[0], p[1])
			in := sine(440, p[0], p[0]/50, 8000) // 20 ms
			out := make([]int16, 0, p[1]/50+1)
			b.ReportAllocs()
			for b.Loop() {
				out = r.Resample(out[:0], in)
			}
		})
	}
}

func BenchmarkNewResampler(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewResampler(24000, 8000); err != nil {
			b.Fatal(err)
		}
	}
}
