package mediastream

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/convgateway/gateway/ports"
)

// Playback progress is tracked with Twilio's marks. Every Play sends its
// audio and then a mark named "m" and a sequence number (1, 2, ...);
// Twilio echoes a mark once the audio sent before it has played, and, when
// the channel sends clear, echoes every mark still pending right after the
// clear. Marks are echoed in the order sent, so the echo of a mark means
// that everything before it is done (played or cleared), and its position
// (the bytes given to Play up to it) is the played position.
//
// Since a Play and its mark are sent together (Channel.sendMu), the last
// mark pending at a clear closes all the audio given so far: its echo
// carries the played position up to what Play was given, as the port
// promises for cleared audio.

// bytesPerMs is the size of a millisecond of 8 kHz mu-law.
const bytesPerMs = 8

// MaxPendingMarks bounds the positions a channel keeps of the marks sent
// and not yet echoed (16 bytes each). Twilio echoes marks as the audio
// plays; at 20 ms a Play, this many marks are 20 seconds of audio queued
// at Twilio. Past it, every other position is forgotten, the last one
// always kept: the echo of a mark whose position was forgotten reports the
// position of the mark kept before it, so progress is reported less
// finely, never beyond what played, and the end of the audio exactly.
const MaxPendingMarks = 1024

// playback accounts for the assistant audio given to Play and the marks
// that report its progress. Send paths (under Channel.sendMu) and the
// reading goroutine share it; its methods are safe for concurrent use.
type playback struct {
	mu    sync.Mutex
	given int64  // bytes given to Play so far
	done  int64  // bytes reported played, at the last echo
	next  uint64 // sequence number of the next mark
	first uint64 // the lowest sequence number not echoed yet
	// pending are the marks sent and not yet echoed whose positions are
	// kept, from pending[head], by sequence number.
	pending []pendingMark
	head    int
}

// pendingMark is a mark sent and not yet echoed: its sequence number and
// its position, the bytes given to Play before it.
type pendingMark struct {
	seq uint64
	pos int64
}

func newPlayback() *playback { return &playback{next: 1, first: 1} }

// played adds n bytes given to Play and returns the sequence number of
// the mark to send after them.
func (p *playback) played(n int64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.given += n
	switch live := len(p.pending) - p.head; {
	case live == 0: // all echoed: reuse the backing array
		p.pending, p.head = p.pending[:0], 0
	case live >= MaxPendingMarks:
		p.thin()
	case p.head >= 64 && 2*p.head >= len(p.pending): // keep the echoed part small
		n := copy(p.pending, p.pending[p.head:])
		p.pending, p.head = p.pending[:n], 0
	}
	seq := p.next
	p.next++
	p.pending = append(p.pending, pendingMark{seq: seq, pos: p.given})
	return seq
}

// thin forgets every other pending position, keeping the last one, and
// moves what it keeps to the front.
func (p *playback) thin() {
	live := p.pending[p.head:]
	n := 0
	for i := (len(live) - 1) % 2; i < len(live); i += 2 {
		p.pending[n] = live[i]
		n++
	}
	p.pending, p.head = p.pending[:n], 0
}

// echoed accounts for the echo of the mark named name and returns the
// played position in milliseconds. A name that is not one of the channel's
// marks, or a mark already echoed, is an error wrapping
// ports.ErrInvalidInput. It allocates nothing.
func (p *playback) echoed(name []byte) (int64, error) {
	seq, ok := markSeq(name)
	if !ok {
		return 0, fmt.Errorf("%w: mark %q is not the gateway's", ports.ErrInvalidInput, name[:min(len(name), 32)]) // the peer's text: bounded
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq < p.first || seq >= p.next {
		return 0, fmt.Errorf("%w: mark m%d was not sent, or was echoed already", ports.ErrInvalidInput, seq)
	}
	// Marks are echoed in order: those before this one are done too.
	for p.head < len(p.pending) && p.pending[p.head].seq <= seq {
		p.done = p.pending[p.head].pos
		p.head++
	}
	p.first = seq + 1
	return p.done / bytesPerMs, nil
}

// appendMarkName appends the name of the mark with sequence number seq.
func appendMarkName(b []byte, seq uint64) []byte {
	return strconv.AppendUint(append(b, 'm'), seq, 10)
}

// markSeq is the sequence number of a mark name appendMarkName makes ("m"
// and a number from 1, without leading zeros), or false for any other
// name.
func markSeq(name []byte) (uint64, bool) {
	if len(name) < 2 || len(name) > 20 || name[0] != 'm' || name[1] == '0' {
		return 0, false
	}
	var seq uint64
	for _, c := range name[1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		seq = seq*10 + uint64(c-'0') // 19 digits at most: no overflow
	}
	return seq, true
}

// decodedLen is the number of bytes the base64 text b decodes to, computed
// from its length and padding without decoding it.
func decodedLen(b []byte) int64 {
	n := len(b)
	for range 2 {
		if n > 0 && b[n-1] == '=' {
			n--
		}
	}
	return int64(n) * 6 / 8
}
