// Package mulaw makes and inspects 8 kHz G.711 mu-law audio for the
// simulators and the demo: tones, silence, a voice-activity test, and WAV
// files.
package mulaw

import "math"

// Silence is the mu-law byte of a zero sample (0x7F, its negative twin,
// is silence too).
const Silence = 0xFF

// Encode converts one 16-bit linear PCM sample to mu-law (G.711).
func Encode(sample int16) byte {
	const bias, clip = 0x84, 32635
	s := int(sample)
	sign := 0
	if s < 0 {
		s, sign = -s, 0x80
	}
	s = min(s, clip) + bias
	exp := 7
	for mask := 0x4000; s&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (s >> (exp + 3)) & 0x0F
	return ^byte(sign | exp<<4 | mant)
}

// Tone returns ms milliseconds of a sine wave at freq Hz and half of full
// scale.
func Tone(freq float64, ms int) []byte {
	out := make([]byte, ms*8)
	for i := range out {
		v := 16000 * math.Sin(2*math.Pi*freq*float64(i)/8000)
		out[i] = Encode(int16(v))
	}
	return out
}

// Quiet returns ms milliseconds of silence.
func Quiet(ms int) []byte {
	out := make([]byte, ms*8)
	for i := range out {
		out[i] = Silence
	}
	return out
}

// Voiced reports whether audio holds anything but silence (0xFF and
// 0x7F): the simulators' stand-in for voice activity.
func Voiced(audio []byte) bool {
	for _, b := range audio {
		if b != 0xFF && b != 0x7F {
			return true
		}
	}
	return false
}
