package live

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// clock is a settable clock for the turn rule.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func chunk(b byte, ms int) []byte {
	return []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, ms*8)))
}
func newTurns() (*turns, *clock) { c := &clock{t: time.Unix(1000, 0)}; return &turns{now: c.now}, c }
func voice(ms int) []byte        { return chunk(0x10, ms) } // loud
func quiet(ms int) []byte        { return chunk(0xFF, ms) } // mu-law zero
func faint(ms int) []byte        { return chunk(0xF8, ms) } // a few units: silence too
func (t *turns) audios(cs ...[]byte) (ids []string) {
	for _, c := range cs {
		ids = append(ids, t.audio(c))
	}
	return ids
}

func TestTurnsFirstOutputOpensAnUtterance(t *testing.T) {
	tr, _ := newTurns()
	assert.Equal(t, "u1", tr.audio(quiet(20)), "even silence: audio always names an utterance")
	tr, _ = newTurns()
	assert.Equal(t, "u1", tr.text(0, 100))
}

func TestTurnsShortPausesKeepTheUtterance(t *testing.T) {
	tr, c := newTurns()
	ids := tr.audios(voice(20), quiet(300), faint(300), voice(20))
	c.advance(700 * time.Millisecond) // real time passes as it plays
	ids = append(ids, tr.audio(voice(20)))
	assert.Equal(t, []string{"u1", "u1", "u1", "u1", "u1"}, ids)
}

func TestTurnsSilentAudioMakesAPause(t *testing.T) {
	tr, _ := newTurns()
	ids := tr.audios(voice(20), quiet(400), quiet(400), quiet(100), voice(20), voice(20))
	assert.Equal(t, []string{"u1", "u1", "u1", "u1", "u2", "u2"}, ids, "800 ms of silence, then words: a new utterance")
}

func TestTurnsTimeWithoutAudioMakesAPause(t *testing.T) {
	tr, c := newTurns()
	first := tr.audio(voice(20))
	c.advance(Pause - 10*time.Millisecond)
	same := tr.audio(voice(20))
	c.advance(Pause + 20*time.Millisecond)
	assert.Equal(t, []string{"u1", "u1", "u2"}, []string{first, same, tr.audio(voice(20))})
}

func TestTurnsCallerWordsEndTheTurn(t *testing.T) {
	tr, _ := newTurns()
	a := tr.audio(voice(20))
	tr.caller()
	silent := tr.audio(quiet(20)) // silence does not begin an utterance
	b := tr.audio(voice(20))
	text := tr.text(100, 200)
	assert.Equal(t, []string{"u1", "u1", "u2", "u2"}, []string{a, silent, b, text})

	tr.caller()
	assert.Equal(t, "u3", tr.text(900, 1000), "a transcript after the caller's words begins the next utterance")
	assert.Equal(t, "u3", tr.audio(voice(20)), "and its audio follows it")
}

func TestTurnsTranscriptAfterItsAudioNeverSplits(t *testing.T) {
	tr, _ := newTurns()
	ids := []string{tr.audio(voice(20)), tr.text(0, 20), tr.audio(voice(20)), tr.text(5000, 5020)}
	assert.Equal(t, []string{"u1", "u1", "u1", "u1"}, ids, "audio came between: the timeline gap is the transcript's lag")
}

func TestTurnsTranscriptLeadingItsAudioSplitsOnTheTimeline(t *testing.T) {
	tr, _ := newTurns()
	ids := []string{tr.text(0, 500), tr.text(600, 900), tr.text(2000, 2400), tr.audio(voice(20))}
	assert.Equal(t, []string{"u1", "u1", "u2", "u2"}, ids, "more than Pause between two pieces with no audio between")
}

func TestTurnsUndecodableAudioCountsAsVoice(t *testing.T) {
	tr, _ := newTurns()
	ids := tr.audios([]byte("not base64!"), quiet(900), []byte("%%%"))
	assert.Equal(t, []string{"u1", "u1", "u2"}, ids)
}
