package mulaw

import "math"

// Rate is the sample rate of telephone mu-law audio, in Hz.
const Rate = 8000

// Decode converts one mu-law byte to a 16-bit linear PCM sample (G.711).
// Both silences (0xFF and 0x7F) decode to 0; Encode(Decode(b)) == b for
// every other byte.
func Decode(b byte) int16 {
	const bias = 0x84
	b = ^b
	exp := (b >> 4) & 0x07
	mant := int(b & 0x0F)
	s := ((mant<<3)+bias)<<exp - bias
	if b&0x80 != 0 {
		return int16(-s)
	}
	return int16(s)
}

// EncodeAll converts 16-bit linear PCM samples to mu-law, one byte each.
func EncodeAll(samples []int16) []byte {
	out := make([]byte, len(samples))
	for i, s := range samples {
		out[i] = Encode(s)
	}
	return out
}

// DecodeAll converts mu-law bytes to 16-bit linear PCM samples.
func DecodeAll(mulaw []byte) []int16 {
	out := make([]int16, len(mulaw))
	for i, b := range mulaw {
		out[i] = Decode(b)
	}
	return out
}

// Mix mixes interleaved samples of channels channels down to mono: each
// output sample is the mean of one frame's channels, so that a full-scale
// signal on every channel stays in range. A trailing partial frame is
// dropped. One channel (or fewer) returns a copy.
func Mix(interleaved []int16, channels int) []int16 {
	if channels <= 1 {
		return append([]int16(nil), interleaved...)
	}
	out := make([]int16, len(interleaved)/channels)
	for i := range out {
		sum := 0
		for _, s := range interleaved[i*channels : (i+1)*channels] {
			sum += int(s)
		}
		out[i] = int16(sum / channels)
	}
	return out
}

// resampleZeroCrossings is the half-width of the resampling filter in
// zero crossings of its sinc: wide enough for a steep low-pass, cheap
// enough for minutes of audio.
const resampleZeroCrossings = 16

// resamplePassband is the fraction of the lower Nyquist frequency the
// low-pass keeps: 0.9 of 4 kHz for telephone audio, a 3.6 kHz cut-off,
// above the telephone band's 3.4 kHz.
const resamplePassband = 0.9

// Resample converts mono samples from one sample rate to another with a
// windowed-sinc (Blackman) interpolator. Going down it low-passes below the
// new Nyquist frequency first, so that what the new rate cannot carry is
// removed instead of folding back as aliases. The output has
// len(samples)*to/from samples (rounded down); equal rates return a copy.
// It panics if a rate is not positive.
func Resample(samples []int16, from, to int) []int16 {
	if from <= 0 || to <= 0 {
		panic("mulaw: Resample: sample rates must be positive")
	}
	if from == to {
		return append([]int16(nil), samples...)
	}
	n := int(int64(len(samples)) * int64(to) / int64(from))
	out := make([]int16, n)
	step := float64(from) / float64(to) // input samples per output sample
	// The cut-off in cycles per input sample.
	fc := 0.5 * resamplePassband * math.Min(1, float64(to)/float64(from))
	half := resampleZeroCrossings / (2 * fc) // filter half-width, input samples
	for i := range out {
		t := float64(i) * step
		lo := max(int(math.Ceil(t-half)), 0)
		hi := min(int(math.Floor(t+half)), len(samples)-1)
		var acc, wsum float64
		for k := lo; k <= hi; k++ {
			x := float64(k) - t
			w := sinc(2*fc*x) * blackman(x/half)
			acc += w * float64(samples[k])
			wsum += w
		}
		if wsum != 0 {
			acc /= wsum // unity gain at DC, also near the edges
		}
		out[i] = clip16(acc)
	}
	return out
}

// FromPCM converts interleaved 16-bit PCM of any rate and channel count to
// 8 kHz mono mu-law: mixed down, resampled, encoded.
func FromPCM(interleaved []int16, rate, channels int) []byte {
	return EncodeAll(Resample(Mix(interleaved, channels), rate, Rate))
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// blackman is the Blackman window over [-1, 1], zero outside.
func blackman(x float64) float64 {
	if x <= -1 || x >= 1 {
		return 0
	}
	p := math.Pi * (x + 1) // 0..2π across the window
	return 0.42 - 0.5*math.Cos(p) + 0.08*math.Cos(2*p)
}

func clip16(v float64) int16 {
	switch {
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	}
	return int16(math.Round(v))
}
