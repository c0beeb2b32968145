package audio

import (
	"math/bits"
	"slices"
)

// G.711 mu-law, as ITU-T G.191's reference software (the Software Tool
// Library's g711.c, ulaw_compress and ulaw_expand) computes it, in the
// equivalent 16-bit form with the bias 0x84 that most codecs use: a sample
// x >= 0 becomes the magnitude x+0x84, a sample x < 0 the magnitude
// 0x84+(-x-1) (its one's complement, so that x and -x-1 get the same code
// but for the sign bit); the magnitude's highest set bit above bit 7 gives
// the segment (0-7), the four bits below it the step within the segment,
// and the code is sign<<7 | segment<<4 | step, all bits inverted.
// Magnitudes beyond the top segment clip to its last step (±32124).
//
// Sun Microsystems' public-domain g711.c (which CPython's audioop uses)
// decodes every code to the same value and encodes every non-negative
// sample to the same code; a negative sample it first divides by 4 with an
// arithmetic shift, rounding toward minus infinity, so that it encodes x
// as G.191 encodes x-4: its negative decision values sit 4 (one unit of
// G.711's 14-bit scale) closer to zero.

const (
	mulawBias = 0x84 // 132: 33 in G.711's 14-bit scale, shifted left by 2
	// mulawMaxMagnitude is the largest biased magnitude the top segment
	// holds; anything larger clips to code 0x80 (positive) or 0x00.
	mulawMaxMagnitude = 0x7FFF
)

// mulawDecodeTable holds the linear value of each of the 256 codes.
var mulawDecodeTable = func() (t [256]int16) {
	for i := range t {
		u := ^byte(i)
		segment := (u >> 4) & 0x07
		magnitude := (int(u&0x0F)<<3 + mulawBias) << segment
		if u&0x80 != 0 {
			t[i] = int16(mulawBias - magnitude)
		} else {
			t[i] = int16(magnitude - mulawBias)
		}
	}
	return t
}()

// MulawToLinear decodes one G.711 mu-law code to a 16-bit linear sample,
// in [-32124, 32124]. Both zero codes, 0xFF and 0x7F, decode to 0.
func MulawToLinear(code byte) int16 { return mulawDecodeTable[code] }

// LinearToMulaw encodes one 16-bit linear sample as a G.711 mu-law code,
// bit-exact with ITU-T G.191's reference. MulawToLinear(LinearToMulaw(x))
// is within half a step of x (a step is 8 in the segment nearest to zero,
// 1024 in the farthest) for x in [-32636, 32635], and ±32124 beyond;
// LinearToMulaw(MulawToLinear(c)) == c for every code c but 0x7F, the
// negative zero, which comes back as 0xFF.
func LinearToMulaw(sample int16) byte {
	magnitude, sign := int(sample), byte(0x00)
	if magnitude < 0 {
		magnitude, sign = -magnitude-1, 0x80
	}
	magnitude = min(magnitude+mulawBias, mulawMaxMagnitude)
	// The segment is the position of the highest set bit above bit 7.
	segment := bits.Len(uint(magnitude|0xFF)) - 8
	step := (magnitude >> (segment + 3)) & 0x0F
	return ^(sign | byte(segment<<4) | byte(step))
}

// AppendLinearFromMulaw appends to dst the linear samples of the mu-law
// codes in src, one sample a byte, and returns the extended slice.
func AppendLinearFromMulaw(dst []int16, src []byte) []int16 {
	dst = slices.Grow(dst, len(src))
	for _, c := range src {
		dst = append(dst, mulawDecodeTable[c])
	}
	return dst
}

// AppendMulaw appends to dst the mu-law codes of the samples in src, one
// byte a sample, and returns the extended slice.
func AppendMulaw(dst []byte, src []int16) []byte {
	dst = slices.Grow(dst, len(src))
	for _, s := range src {
		dst = append(dst, LinearToMulaw(s))
	}
	return dst
}

// AppendLinearFromPCM16 appends to dst the samples of src, signed 16-bit
// little-endian PCM, and returns the extended slice. A trailing odd byte is
// not a sample and is ignored.
func AppendLinearFromPCM16(dst []int16, src []byte) []int16 {
	dst = slices.Grow(dst, len(src)/2)
	for i := 0; i+1 < len(src); i += 2 {
		dst = append(dst, int16(uint16(src[i])|uint16(src[i+1])<<8))
	}
	return dst
}

// AppendPCM16 appends to dst the samples of src as signed 16-bit
// little-endian PCM, two bytes a sample, and returns the extended slice.
func AppendPCM16(dst []byte, src []int16) []byte {
	dst = slices.Grow(dst, 2*len(src))
	for _, s := range src {
		dst = append(dst, byte(s), byte(uint16(s)>>8))
	}
	return dst
}
