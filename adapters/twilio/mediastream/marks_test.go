package mediastream

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

func echo(t *testing.T, p *playback, seq uint64) int64 {
	t.Helper()
	ms, err := p.echoed(appendMarkName(nil, seq))
	require.NoError(t, err, "m%d", seq)
	return ms
}

func TestMarksReportWhatPlayed(t *testing.T) {
	p := newPlayback()
	for i, n := range []int64{160, 80, 4, 160} {
		assert.Equal(t, uint64(i+1), p.played(n), "marks are numbered from 1")
	}
	assert.Equal(t, int64(20), echo(t, p, 1))
	assert.Equal(t, int64(30), echo(t, p, 3), "an echo implies the marks before it: %d bytes", 160+80+4)
	_, err := p.echoed([]byte("m2"))
	assert.ErrorIs(t, err, ports.ErrInvalidInput, "m2 is done already")
	assert.Equal(t, int64(50), echo(t, p, 4))
	_, err = p.echoed([]byte("m5"))
	assert.ErrorIs(t, err, ports.ErrInvalidInput, "m5 was never sent")
}

func TestForeignMarkNames(t *testing.T) {
	p := newPlayback()
	p.played(8)
	for _, name := range []string{"", "m", "m0", "m01", "M1", "resp-1", "m1x", "m-1", "m+1", "m 1", "1", "m99999999999999999999"} {
		_, err := p.echoed([]byte(name))
		assert.ErrorIs(t, err, ports.ErrInvalidInput, "%q", name)
	}
	assert.Equal(t, int64(1), echo(t, p, 1), "the pending mark is still there")
}

func TestMarkNames(t *testing.T) {
	for _, seq := range []uint64{1, 9, 10, 12345, 9_999_999_999_999_999_999} {
		name := appendMarkName(nil, seq)
		got, ok := markSeq(name)
		assert.True(t, ok, "%s", name)
		assert.Equal(t, seq, got)
	}
}

// Without echoes, a channel keeps at most MaxPendingMarks positions;
// the echo of a mark whose position was forgotten reports the one before
// it, and the last mark always reports everything given to Play.
func TestPendingMarksAreBounded(t *testing.T) {
	p := newPlayback()
	const plays = 10 * MaxPendingMarks
	for i := range plays {
		require.Equal(t, uint64(i+1), p.played(8), "every Play has its mark") // 1 ms each
		require.LessOrEqual(t, len(p.pending)-p.head, MaxPendingMarks)
	}
	var last int64
	for seq := uint64(1); seq <= plays; seq += 97 {
		ms := echo(t, p, seq)
		assert.LessOrEqual(t, ms, int64(seq), "never beyond what played (m%d)", seq)
		assert.GreaterOrEqual(t, ms, last, "never backwards")
		last = ms
	}
	assert.Greater(t, last, int64(0), "progress is reported")
	assert.Equal(t, int64(plays), echo(t, p, plays), "the last mark reports everything")
}

// Echoes that lag behind the Plays do not make the queue grow.
func TestPendingMarksReuseTheirMemory(t *testing.T) {
	p := newPlayback()
	const lag = 100
	for range lag {
		p.played(8)
	}
	for range 100_000 {
		p.played(8)
		echo(t, p, p.first)
	}
	assert.Equal(t, lag, len(p.pending)-p.head)
	assert.LessOrEqual(t, cap(p.pending), 1024)
}

func TestDecodedLen(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 159, 160, 161, 8000} {
		b64 := base64.StdEncoding.EncodeToString(make([]byte, n))
		assert.Equal(t, int64(n), decodedLen([]byte(b64)), "%d bytes", n)
		raw := base64.RawStdEncoding.EncodeToString(make([]byte, n))
		assert.Equal(t, int64(n), decodedLen([]byte(raw)), "%d bytes unpadded", n)
	}
}

func BenchmarkDecodedLen(b *testing.B) {
	audio := []byte(base64.StdEncoding.EncodeToString(make([]byte, 161)))
	b.ReportAllocs()
	for b.Loop() {
		if decodedLen(audio) != 161 {
			b.Fatal()
		}
	}
}
