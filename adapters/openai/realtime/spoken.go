package realtime

import (
	"sync"
	"sync/atomic"
)

// keepItems is how many assistant items spoken remembers: interruptions
// concern the utterance playing, and the one or two queued behind it.
const keepItems = 32

// spoken counts the assistant audio a session delivered, per item, in
// bytes of raw mu-law: conversation.item.truncate fails when audio_end_ms
// goes beyond the item's audio, so Heard clamps to it. The reading
// goroutine adds to the count of the item streaming without locking; Heard
// reads from any goroutine.
type spoken struct {
	mu    sync.Mutex
	bytes map[string]*atomic.Int64
	order []string // oldest first, at most keepItems
}

// item returns the count of id, adding it (and forgetting the oldest item
// beyond keepItems) when it is new.
func (s *spoken) item(id string) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.bytes[id]; ok {
		return n
	}
	if s.bytes == nil {
		s.bytes = make(map[string]*atomic.Int64, keepItems)
	}
	if len(s.order) == keepItems {
		delete(s.bytes, s.order[0])
		s.order = append(s.order[:0], s.order[1:]...)
	}
	n := new(atomic.Int64)
	s.bytes[id] = n
	s.order = append(s.order, id)
	return n
}

// bytesOf returns how many bytes of audio item id had, and whether it is
// remembered.
func (s *spoken) bytesOf(id string) (int64, bool) {
	s.mu.Lock()
	n, ok := s.bytes[id]
	s.mu.Unlock()
	if !ok {
		return 0, false
	}
	return n.Load(), true
}

// decodedLen is the length of the data base64 text b encodes (standard
// encoding, padded; unpadded text is counted as far as it goes).
func decodedLen(b []byte) int {
	n := len(b) / 4 * 3
	if rem := len(b) % 4; rem != 0 {
		return n + max(rem-1, 0)
	}
	for i := len(b) - 1; i >= 0 && i >= len(b)-2 && b[i] == '='; i-- {
		n--
	}
	return n
}
