package live

import (
	"encoding/base64"
	"strconv"
	"time"
)

// Pause is how long the assistant must be quiet before its next words
// start a new utterance: long enough that a pause between two sentences
// does not split an answer.
const Pause = 800 * time.Millisecond

// silencePeak is the largest sample (of 32767) of a chunk that counts as
// silence: about -42 dBFS, below speech, above the codec's idle noise.
const silencePeak = 256

// turns names the assistant's utterances by the rule of the package
// comment. It is used by one goroutine at a time (the session's reader).
type turns struct {
	now func() time.Time
	n   int    // utterances so far
	cur string // the current utterance's id; "" before the first

	callerSpoke    bool      // caller words since the assistant's last output
	voiceEnd       time.Time // when the last voiced audio ends, at real-time playback
	silentMs       int       // silent audio received since the last voiced audio
	hasText        bool      // the current utterance has a transcript piece
	textEndMs      int64     // the session timeline end of its last piece
	audioSinceText bool      // audio arrived after the last transcript piece

	pcm []byte // decode buffer
}

// audio returns the utterance of an output audio chunk (base64 mu-law).
func (t *turns) audio(chunk []byte) string {
	now := t.now()
	voiced, ms := t.analyse(chunk)
	quiet := t.silentMs >= int(Pause/time.Millisecond) || (!t.voiceEnd.IsZero() && now.Sub(t.voiceEnd) >= Pause)
	if t.cur == "" || voiced && (t.callerSpoke || quiet) {
		t.next()
	}
	if voiced {
		t.voiceEnd = later(t.voiceEnd, now).Add(time.Duration(ms) * time.Millisecond)
		t.silentMs = 0
	} else {
		t.silentMs += ms
	}
	t.audioSinceText = true
	return t.cur
}

// text returns the utterance of an output transcript piece spanning
// startMs to endMs on the session timeline.
func (t *turns) text(startMs, endMs int64) string {
	leads := !t.audioSinceText && t.hasText && startMs-t.textEndMs > Pause.Milliseconds()
	if t.cur == "" || t.callerSpoke || leads {
		t.next()
	}
	t.hasText, t.audioSinceText = true, false
	t.textEndMs = max(t.textEndMs, endMs)
	return t.cur
}

// caller notes the caller's words.
func (t *turns) caller() { t.callerSpoke = t.cur != "" }

func (t *turns) next() {
	t.n++
	t.cur = "u" + strconv.Itoa(t.n)
	t.callerSpoke, t.hasText, t.audioSinceText, t.silentMs = false, false, false, 0
	t.voiceEnd = time.Time{}
}

// analyse tells whether a chunk holds more than silence and how long it
// lasts. A chunk that is not base64 counts as voiced: it is passed on as
// it is, and the session does not judge what it cannot read.
func (t *turns) analyse(chunk []byte) (voiced bool, ms int) {
	need := base64.StdEncoding.DecodedLen(len(chunk))
	if cap(t.pcm) < need {
		t.pcm = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(t.pcm[:need], chunk)
	if err != nil {
		return true, need / 8
	}
	for _, b := range t.pcm[:n] {
		if mulawMagnitude(b) > silencePeak {
			return true, n / 8
		}
	}
	return false, n / 8
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// mulawMagnitude is the magnitude of the 16-bit linear sample a G.711
// mu-law code stands for (ITU-T G.711, as Sun's g711.c decodes it).
func mulawMagnitude(code byte) int {
	c := ^code
	t := (int(c&0x0f)<<3 + 0x84) << (int(c>>4) & 7)
	return t - 0x84
}
