package audio

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	simmulaw "github.com/convgateway/gateway/test/sim/mulaw"
)

// sunReference reads testdata/g711-sun-reference.txt (made with CPython's
// audioop, which implements Sun Microsystems' g711.c; the file's header
// says how): what every code decodes to, and the code of every
// non-negative sample.
func sunReference(t *testing.T) (decode [256]int16, encode [32768]byte) {
	t.Helper()
	f, err := os.Open("testdata/g711-sun-reference.txt")
	require.NoError(t, err)
	defer f.Close()
	type run struct {
		first int
		code  byte
	}
	var runs []run
	decoded := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		require.Len(t, fields, 3, "line %q", sc.Text())
		switch fields[0] {
		case "decode":
			code, err := strconv.ParseUint(fields[1], 0, 8)
			require.NoError(t, err)
			v, err := strconv.ParseInt(fields[2], 10, 16)
			require.NoError(t, err)
			decode[code] = int16(v)
			decoded++
		case "encode":
			first, err := strconv.Atoi(fields[1])
			require.NoError(t, err)
			code, err := strconv.ParseUint(fields[2], 0, 8)
			require.NoError(t, err)
			runs = append(runs, run{first, byte(code)})
		default:
			t.Fatalf("unknown line %q", sc.Text())
		}
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 256, decoded, "a decode line for every code")
	require.NotEmpty(t, runs)
	require.Zero(t, runs[0].first, "the encode runs start at 0")
	for i, r := range runs {
		end := len(encode)
		if i+1 < len(runs) {
			end = runs[i+1].first
		}
		for x := r.first; x < end; x++ {
			encode[x] = r.code
		}
	}
	return decode, encode
}

func TestMulawToLinearMatchesSunReference(t *testing.T) {
	decode, _ := sunReference(t)
	for c := range 256 {
		assert.Equal(t, decode[c], MulawToLinear(byte(c)), "code %#02x", c)
	}
}

func TestLinearToMulawMatchesSunReferenceOnNonNegativeSamples(t *testing.T) {
	_, encode := sunReference(t)
	for x := range 32768 {
		if got := LinearToMulaw(int16(x)); got != encode[x] {
			t.Fatalf("LinearToMulaw(%d) = %#02x, Sun's g711.c gives %#02x", x, got, encode[x])
		}
	}
}

// g191Compress and g191Expand are ulaw_compress and ulaw_expand of ITU-T
// G.191's Software Tool Library (g711.c), transcribed sample by sample:
// the ITU's own reference, computed in G.711's 14-bit scale.
func g191Compress(linear int16) byte {
	var absno int
	if linear < 0 {
		absno = int(^linear)>>2 + 33 // one's complement of negative samples
	} else {
		absno = int(linear)>>2 + 33
	}
	absno = min(absno, 0x1FFF)
	segno := 1
	for i := absno >> 6; i != 0; i >>= 1 {
		segno++
	}
	high := 0x0008 - segno
	low := 0x000F - (absno>>segno)&0x000F
	out := high<<4 | low
	if linear >= 0 {
		out |= 0x0080
	}
	return byte(out)
}

func g191Expand(log byte) int16 {
	sign := 1
	if log < 0x80 {
		sign = -1
	}
	mantissa := int(^log)
	exponent := (mantissa >> 4) & 0x0007
	segment := exponent + 1
	mantissa &= 0x000F
	step := 4 << segment
	return int16(sign * (0x0080<<exponent + step*mantissa + step/2 - 4*33))
}

func TestMulawMatchesITUReference(t *testing.T) {
	for x := math.MinInt16; x <= math.MaxInt16; x++ {
		if got, want := LinearToMulaw(int16(x)), g191Compress(int16(x)); got != want {
			t.Fatalf("LinearToMulaw(%d) = %#02x, G.191's ulaw_compress gives %#02x", x, got, want)
		}
	}
	for c := range 256 {
		assert.Equal(t, g191Expand(byte(c)), MulawToLinear(byte(c)), "code %#02x", c)
	}
}

func TestMulawKnownValues(t *testing.T) {
	// From G.711's tables (as G.191's reference computes them): the zero
	// codes, full scale, and the first decision values either side of 0,
	// which are one apart in sign (x and -x-1 share a code).
	decodes := []struct {
		code byte
		want int16
	}{
		{0xFF, 0}, {0x7F, 0}, {0x00, -32124}, {0x80, 32124},
		{0xFE, 8}, {0x7E, -8}, {0xEF, 132}, {0xDF, 396}, {0xF0, 120}, {0x70, -120},
	}
	for _, tc := range decodes {
		assert.Equal(t, tc.want, MulawToLinear(tc.code), "decode %#02x", tc.code)
	}
	encodes := []struct {
		sample int16
		want   byte
	}{
		{0, 0xFF}, {3, 0xFF}, {4, 0xFE}, {11, 0xFE}, {12, 0xFD},
		{-1, 0x7F}, {-4, 0x7F}, {-5, 0x7E}, {-12, 0x7E}, {-13, 0x7D},
		{32124, 0x80}, {32767, 0x80}, {-32124, 0x00}, {-32768, 0x00},
	}
	for _, tc := range encodes {
		assert.Equal(t, tc.want, LinearToMulaw(tc.sample), "encode %d", tc.sample)
	}
}

func TestMulawRoundTripsEveryCode(t *testing.T) {
	for c := range 256 {
		want := byte(c)
		if want == 0x7F {
			want = 0xFF // the negative zero comes back positive
		}
		assert.Equal(t, want, LinearToMulaw(MulawToLinear(byte(c))), "code %#02x", c)
	}
}

// Every sample decodes back to within half a step of its segment (8 in
// the smallest, 1024 in the largest) until the top segment ends, where it
// clips to ±32124; and the larger the sample, the larger what it decodes
// back to.
func TestLinearToMulawQuantizesWithinHalfAStep(t *testing.T) {
	prev := math.MinInt
	for x := math.MinInt16; x <= math.MaxInt16; x++ {
		code := LinearToMulaw(int16(x))
		got := int(MulawToLinear(code))
		segment := int(^code>>4) & 0x07
		switch {
		case x > 32635:
			require.Equal(t, 32124, got, "%d clips", x)
		case x < -32636:
			require.Equal(t, -32124, got, "%d clips", x)
		case abs(x-got) > 4<<segment:
			t.Fatalf("%d decodes back to %d, %d away: more than half a step (%d) of segment %d", x, got, abs(x-got), 4<<segment, segment)
		}
		require.GreaterOrEqual(t, got, prev, "monotonic at %d", x)
		prev = got
	}
}

// The simulators' codec (test/sim/mulaw) decodes every code the same way.
// It encodes a negative sample x by the magnitude -x rather than -x-1, so
// it gives for x what this codec gives for x-1.
func TestMulawAgreesWithTheSimulatorsCodec(t *testing.T) {
	for c := range 256 {
		assert.Equal(t, simmulaw.Decode(byte(c)), MulawToLinear(byte(c)), "decode %#02x", c)
	}
	for x := math.MinInt16 + 1; x <= math.MaxInt16; x++ {
		want := LinearToMulaw(int16(x))
		if x < 0 {
			want = LinearToMulaw(int16(x - 1))
		}
		if got := simmulaw.Encode(int16(x)); got != want {
			t.Fatalf("simulator encodes %d to %#02x, this codec to %#02x", x, got, want)
		}
	}
}

func TestAppendHelpers(t *testing.T) {
	samples := []int16{0, 1, -1, 0x1234, -2, math.MaxInt16, math.MinInt16}
	pcm := AppendPCM16([]byte{0xAA}, samples)
	assert.Equal(t, []byte{0xAA, 0, 0, 1, 0, 0xFF, 0xFF, 0x34, 0x12, 0xFE, 0xFF, 0xFF, 0x7F, 0x00, 0x80}, pcm,
		"little-endian, appended after what dst held")
	assert.Equal(t, append([]int16{7}, samples...), AppendLinearFromPCM16([]int16{7}, pcm[1:]))
	assert.Equal(t, []int16{0x0201}, AppendLinearFromPCM16(nil, []byte{1, 2, 3}), "a trailing odd byte is ignored")

	codes := AppendMulaw([]byte{0xAA}, samples)
	assert.Equal(t, []byte{0xAA, 0xFF, 0xFF, 0x7F, 0xAD, 0x7F, 0x80, 0x00}, codes)
	assert.Equal(t, []int16{7, 0, 0, 0, 4604, 0, 32124, -32124}, AppendLinearFromMulaw([]int16{7}, codes[1:]))
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
