package main

import (
	"encoding/base64"
	"sync"
	"time"
)

// The two ways a frame can travel: through the gateway, or straight
// between the simulators (a call's twin).
const (
	pathGateway = 0
	pathDirect  = 1
)

// frameMs is the duration of one frame, both ways: 20 ms of 8 kHz mu-law.
const (
	frameMs    = 20
	frameBytes = frameMs * 8
)

// Caller frames carry a marker so that the simulator can tell which call,
// path and frame it got: 49 bits (call 16, path 1, sequence 32) in the
// frame's first 49 bytes, each 0xFF or 0x7F. Both are mu-law silence, so a
// silent frame stays silent for the simulator's voice detection.
const inMarkerBits = 49

// stampIn writes the marker of (call, path, seq) into frame.
func stampIn(frame []byte, call, path, seq int) {
	v := uint64(call)&0xFFFF | uint64(path&1)<<16 | uint64(uint32(seq))<<17
	for i := range inMarkerBits {
		if v>>i&1 == 1 {
			frame[i] = 0x7F
		} else {
			frame[i] = 0xFF
		}
	}
}

// readIn reads the marker from the base64 text of a caller frame.
func readIn(b64 []byte) (call, path, seq int, ok bool) {
	const chars = (inMarkerBits + 2) / 3 * 4 // whole base64 groups
	if len(b64) < chars {
		return 0, 0, 0, false
	}
	var raw [chars / 4 * 3]byte
	if _, err := base64.StdEncoding.Decode(raw[:], b64[:chars]); err != nil {
		return 0, 0, 0, false
	}
	var v uint64
	for i := range inMarkerBits {
		switch raw[i] {
		case 0x7F:
			v |= 1 << i
		case 0xFF:
		default:
			return 0, 0, 0, false
		}
	}
	return int(v & 0xFFFF), int(v >> 16 & 1), int(v >> 17), true
}

// Assistant chunks carry a marker too: 0xA5, then the response's number in
// the session and the chunk's index in the response, 16 bits each.
const outMagic = 0xA5

// stampOut writes the marker of (response, index) into raw audio.
func stampOut(raw []byte, response, index int) {
	raw[0], raw[1], raw[2], raw[3], raw[4] = outMagic, byte(response>>8), byte(response), byte(index>>8), byte(index)
}

// readOut reads the marker from the base64 text of an assistant chunk.
func readOut(b64 []byte) (response, index int, ok bool) {
	if len(b64) < 8 {
		return 0, 0, false
	}
	var raw [6]byte
	if _, err := base64.StdEncoding.Decode(raw[:], b64[:8]); err != nil || raw[0] != outMagic {
		return 0, 0, false
	}
	return int(raw[1])<<8 | int(raw[2]), int(raw[3])<<8 | int(raw[4]), true
}

// clock stamps events in microseconds since the run began, plus one, so
// that zero means "never".
type clock struct{ t0 time.Time }

func (c clock) now() int32 { return int32(time.Since(c.t0)/time.Microsecond) + 1 }

// inDir is what one call's caller frames did on one path.
type inDir struct {
	sent, arrived []int32 // by sequence number
	last          int     // highest sequence number arrived; -1 before
	reordered     int     // frames that arrived after a later one
}

// outDir is what one call's assistant chunks did on one path: by the
// response's number (from 1) and the chunk's index.
type outDir struct {
	sent, recv [][]int32
	lastResp   int
	lastIndex  int
	reordered  int
}

// callRec is the record of one call. Its methods are safe for concurrent
// use: the simulator's goroutines and the call's receivers write it.
type callRec struct {
	id   int
	twin bool

	mu   sync.Mutex
	in   [2]inDir
	out  [2]outDir
	held bool  // stayed up for the whole run
	err  error // why the call failed, if it did
	late int   // frames sent more than one frame late (the generator lagged)
}

func newCallRec(id int, twin bool, frames int) *callRec {
	r := &callRec{id: id, twin: twin}
	paths := 1
	if twin {
		paths = 2
	}
	for p := range paths {
		r.in[p] = inDir{sent: make([]int32, frames), arrived: make([]int32, frames), last: -1}
	}
	return r
}

func (r *callRec) inSent(path, seq int, at int32) {
	r.mu.Lock()
	if d := &r.in[path]; seq < len(d.sent) {
		d.sent[seq] = at
	}
	r.mu.Unlock()
}

func (r *callRec) inArrived(path, seq int, at int32) {
	r.mu.Lock()
	d := &r.in[path]
	if seq < len(d.arrived) {
		d.arrived[seq] = at
	}
	if seq < d.last {
		d.reordered++
	}
	d.last = max(d.last, seq)
	r.mu.Unlock()
}

// slot returns the entry for (response, index), growing the tables.
func slot(t *[][]int32, response, index int) *int32 {
	for len(*t) < response {
		*t = append(*t, nil)
	}
	row := &(*t)[response-1]
	for len(*row) <= index {
		*row = append(*row, 0)
	}
	return &(*row)[index]
}

func (r *callRec) outSent(path, response, index int, at int32) {
	r.mu.Lock()
	*slot(&r.out[path].sent, response, index) = at
	r.mu.Unlock()
}

func (r *callRec) outRecv(path, response, index int, at int32) {
	r.mu.Lock()
	d := &r.out[path]
	*slot(&d.recv, response, index) = at
	if response < d.lastResp || (response == d.lastResp && index <= d.lastIndex) {
		d.reordered++
	} else {
		d.lastResp, d.lastIndex = response, index
	}
	r.mu.Unlock()
}
