package audio

import (
	"fmt"
	"math"
	"slices"

	"github.com/convgateway/gateway/ports"
)

// The low-pass filter every Resampler designs: a Kaiser-windowed sinc.
// Its pass band is flat (within 0.002 dB) up to passBand of the lower of
// the two rates' Nyquist frequencies (3.4 kHz when one side is 8 kHz, the
// top of the telephone band), and its stop band, from that Nyquist
// frequency up, is attenuated by stopBandDB (79 dB at worst, as designed
// and rounded to float32): what the lower rate cannot carry is removed
// before it can fold back (going down), and so are the images of the
// spectrum (going up).
const (
	passBand   = 0.85
	stopBandDB = 80.0
)

// supportedRate reports whether a Resampler converts from or to rate.
func supportedRate(rate int) bool { return rate == 8000 || rate == 16000 || rate == 24000 }

// Resampler converts mono 16-bit samples from one sample rate to another
// (8000, 16000 and 24000 Hz, in every direction) as a stream: a polyphase
// FIR filter that keeps the last input samples between calls, so that a
// signal converted in chunks of any sizes gives exactly the samples it
// gives converted whole.
//
// The output lags the input by Delay() output samples: output sample n is
// the signal at the time of output sample n-Delay(), and the first Delay()
// samples are the filter filling up from silence. The filter is linear
// phase, so every frequency is delayed by the same amount. Nothing is held
// back: after n input samples in all, ceil(n*to/from) output samples have
// come out (each one as soon as the newest input it needs has come in).
//
// A Resampler is not safe for concurrent use. Once it has seen its largest
// chunk, Resample allocates nothing but what dst needs to grow.
type Resampler struct {
	from, to int
	up, down int // to/from as a fraction in lowest terms
	taps     int // coefficients a phase: input samples an output sample reads
	delay    int // in output samples
	// phases holds one row of taps coefficients for each of the up phases,
	// each row in time order: coefficient j multiplies the input sample
	// taps-1-j samples before the newest one the output sample reads.
	phases [][]float32
	// buf holds the last taps-1 input samples of the previous calls (zeros
	// at first), then, during a call, the chunk being converted.
	buf []float32
	// newest is the index in buf of the newest input sample the next
	// output sample reads, and phase that sample's phase.
	newest, phase int
}

// NewResampler returns a Resampler from one sample rate to another, in Hz.
// It designs the filter for that pair; it fails, with an error wrapping
// ports.ErrInvalidInput, unless both rates are 8000, 16000 or 24000 and
// they differ.
func NewResampler(from, to int) (*Resampler, error) {
	if !supportedRate(from) || !supportedRate(to) || from == to {
		return nil, fmt.Errorf("audio: new resampler %d Hz to %d Hz: %w: rates must be two of 8000, 16000 and 24000",
			from, to, ports.ErrInvalidInput)
	}
	g := gcd(from, to)
	r := &Resampler{from: from, to: to, up: to / g, down: from / g}
	r.design()
	r.buf = make([]float32, r.taps-1)
	r.newest = r.taps - 1
	return r, nil
}

// Delay is how many output samples the output lags the input by.
func (r *Resampler) Delay() int { return r.delay }

// Resample appends to dst the output samples that src completes and
// returns the extended slice: after it, ceil(n*to/from) samples have come
// out since the Resampler was made, n being every input sample so far,
// src's included. What the filter's ringing takes beyond the 16-bit range
// is clipped.
func (r *Resampler) Resample(dst, src []int16) []int16 {
	history := r.taps - 1
	r.buf = slices.Grow(r.buf, len(src))
	for _, s := range src {
		r.buf = append(r.buf, float32(s))
	}
	dst = slices.Grow(dst, (len(src)*r.up+r.down-1)/r.down+1)
	for r.newest < len(r.buf) {
		dst = append(dst, toInt16(dot(r.phases[r.phase], r.buf[r.newest-history:r.newest+1])))
		r.phase += r.down
		r.newest += r.phase / r.up
		r.phase %= r.up
	}
	// Keep the last taps-1 samples for the next call.
	n := copy(r.buf, r.buf[len(r.buf)-history:])
	r.buf = r.buf[:n]
	r.newest -= len(src)
	return dst
}

// design computes the filter for r.up and r.down: a low-pass prototype at
// the least common multiple of the two rates (from*up), its transition
// band from passBand of the lower rate's Nyquist frequency to that
// frequency, split into its up phases.
//
// The prototype has 2*D+1 taps, centred on tap D, so it delays by D
// samples of the prototype's rate. D is a whole number of output samples
// (a multiple of down) so that the output's lag is exact, and at least
// what Kaiser's estimate asks for stopBandDB over the transition band.
func (r *Resampler) design() {
	rate := float64(r.from * r.up) // the prototype's sample rate
	nyquist := float64(min(r.from, r.to)) / 2
	transition := (1 - passBand) * nyquist / rate                     // cycles a sample
	cutoff := (1 + passBand) / 2 * nyquist / rate                     // cycles a sample, at -6 dB
	order := (stopBandDB - 7.95) / (2.285 * 2 * math.Pi * transition) // Kaiser's estimate of 2*D
	r.delay = int(math.Ceil(order / 2 / float64(r.down)))
	half := r.delay * r.down // D
	beta := 0.1102 * (stopBandDB - 8.7)

	length := 2*half + 1
	r.taps = (length + r.up - 1) / r.up
	proto := make([]float64, r.taps*r.up) // zeros past length
	for i := range length {
		t := float64(i - half)
		ratio := t / float64(half)
		proto[i] = sinc(2*cutoff*t) * besselI0(beta*math.Sqrt(1-ratio*ratio))
	}
	// Phase p holds taps p, p+up, p+2*up, ...; tap p+k*up weighs the input
	// k samples before the newest one read. Each phase is scaled to a sum
	// of 1, so that a constant signal comes out unchanged at every phase
	// (no tone at the input rate from uneven phase gains).
	r.phases = make([][]float32, r.up)
	for p := range r.phases {
		var sum float64
		for k := range r.taps {
			sum += proto[p+k*r.up]
		}
		row := make([]float32, r.taps)
		for k := range r.taps {
			row[r.taps-1-k] = float32(proto[p+k*r.up] / sum)
		}
		r.phases[p] = row
	}
}

// dot is the sum of the products of h and x, which have the same length.
// Four running sums let the processor overlap the additions; the order of
// the additions depends only on the length, so the result is the same
// whatever the call.
func dot(h, x []float32) float32 {
	x = x[:len(h)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(h); i += 4 {
		s0 += h[i] * x[i]
		s1 += h[i+1] * x[i+1]
		s2 += h[i+2] * x[i+2]
		s3 += h[i+3] * x[i+3]
	}
	for ; i < len(h); i++ {
		s0 += h[i] * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// toInt16 rounds v to the nearest integer (halves away from zero) and
// clips it to the 16-bit range.
func toInt16(v float32) int16 {
	switch {
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	case v < 0:
		return int16(v - 0.5)
	}
	return int16(v + 0.5)
}

// sinc is sin(πx)/(πx), 1 at 0.
func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind of order 0,
// by its power series (which converges fast for the Kaiser window's
// arguments, below 20).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1.0; term > 1e-12*sum; k++ {
		term *= q / (k * k)
		sum += term
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
