package realtimesim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// response is a response being streamed.
type response struct {
	id     string
	number int           // the response's number in the session, from 1
	prev   *response     // the response it superseded, if any
	cancel chan struct{} // closed to cancel
	reason string        // why it was cancelled; set before cancel is closed
	once   sync.Once
	done   chan struct{} // closed when it has sent its last event
}

// cancelled reports whether r was stopped.
func (r *response) cancelled() bool {
	select {
	case <-r.cancel:
		return true
	default:
		return false
	}
}

func (r *response) stop(reason string) {
	r.once.Do(func() {
		r.reason = reason
		close(r.cancel)
	})
}

// Say makes the model answer with a new response and item (ids of the
// session's own, "resp_N" and "item_N"): see SayAs.
func (s *Session) Say(ctx context.Context, transcript string, chunks ...[]byte) error {
	return s.SayAs(ctx, s.nextID("resp"), s.nextID("item"), transcript, chunks...)
}

// SayAs makes the model answer as response responseID with assistant item
// itemID: response.created, the chunks (base64 audio) as output_audio.delta
// events of the item, output_audio.done, the transcript, then response.done
// with usage. It returns when all are sent; a response.cancel arriving
// meanwhile ends it early (status cancelled). Ids are the caller's to keep
// apart from the session's own.
func (s *Session) SayAs(ctx context.Context, responseID, itemID, transcript string, chunks ...[]byte) error {
	return s.respond(ctx, responseID, itemID, transcript, chunks, 0)
}

// respond streams one response, waiting every between chunks.
func (s *Session) respond(ctx context.Context, responseID, itemID, transcript string, chunks [][]byte, every time.Duration) error {
	return s.speak(ctx, s.begin(responseID), itemID, transcript, chunks, every)
}

// speak streams r, begun, as the audio item itemID.
func (s *Session) speak(ctx context.Context, r *response, itemID, transcript string, chunks [][]byte, every time.Duration) error {
	s.mu.Lock()
	if _, ok := s.itemAudioMs[itemID]; !ok {
		s.itemAudioMs[itemID] = 0 // known, with no audio yet
	}
	s.mu.Unlock()
	return s.stream(ctx, r, itemID, transcript, chunks, every)
}

// begin makes responseID the active response, at once: a response.create
// from now on is refused. One streams at a time, as with the real API: an
// active response is stopped ("superseded"), and the new one starts
// (start) once it has sent its last event. The caller must call start, and
// end once.
func (s *Session) begin(responseID string) *response {
	r := &response{id: responseID, cancel: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.prev = s.active
	if r.prev != nil {
		r.prev.stop("superseded")
	}
	s.active = r
	s.streamed++
	r.number = s.streamed
	s.unanswered = nil // the response sees every result given so far
	return r
}

// start waits for the response r superseded, then sends response.created.
func (s *Session) start(ctx context.Context, r *response) error {
	if r.prev != nil {
		select {
		case <-r.prev.done:
		case <-ctx.Done():
			return fmt.Errorf("realtimesim: respond: %w", ctx.Err())
		}
	}
	return s.send(ctx, responseEvent{EventID: s.nextID("event"), Type: "response.created",
		Response: responseInfo{Object: "realtime.response", ID: r.id, Status: "in_progress", Output: []any{}}})
}

// inactive ends r's being the active response. The response stops being
// active before its response.done is sent, as with the real API: a
// response.cancel or response.create the client sends once it has seen
// response.done finds no active response.
func (s *Session) inactive(r *response) {
	s.mu.Lock()
	if s.active == r {
		s.active = nil
	}
	s.mu.Unlock()
}

// end sends r's response.done, with its status (completed unless it was
// cancelled), output and usage for outputTokens, and releases r.
func (s *Session) end(ctx context.Context, r *response, output []any, outputTokens int) error {
	defer close(r.done)
	s.inactive(r)
	status := "completed"
	var details *statusDetails
	if r.cancelled() {
		status, details = "cancelled", &statusDetails{Type: "cancelled", Reason: r.reason}
	}
	if output == nil {
		output = []any{}
	}
	return s.send(ctx, responseEvent{EventID: s.nextID("event"), Type: "response.done", Response: responseInfo{
		Object: "realtime.response", ID: r.id, Status: status, StatusDetails: details, Output: output,
		Usage: &usageInfo{InputTokens: 10, OutputTokens: outputTokens, TotalTokens: 10 + outputTokens},
	}})
}

// stream streams the audio response r of item itemID, waiting every
// between chunks, until its end or its cancellation.
func (s *Session) stream(ctx context.Context, r *response, itemID, transcript string, chunks [][]byte, every time.Duration) error {
	released := false
	defer func() {
		if !released { // failed before end: release r all the same
			s.inactive(r)
			close(r.done)
		}
	}()
	if err := s.start(ctx, r); err != nil {
		return err
	}
	head := deltaHead(r.id, itemID)
	buf := make([]byte, 0, 512)
	for i, chunk := range chunks {
		if i > 0 && every > 0 {
			select {
			case <-time.After(every):
			case <-ctx.Done():
				return fmt.Errorf("realtimesim: say: %w", ctx.Err())
			case <-r.cancel:
			}
		}
		if r.cancelled() {
			break
		}
		if f := s.srv.opts.OnDelta; f != nil {
			chunk = f(s, r.number, i, chunk)
		}
		buf = s.appendDelta(buf[:0], head, chunk)
		if err := s.write(ctx, buf); err != nil {
			return err
		}
		s.mu.Lock()
		s.itemAudioMs[itemID] += audioMs(chunk)
		s.mu.Unlock()
	}
	if !r.cancelled() {
		if err := s.send(ctx, itemEvent{EventID: s.nextID("event"), Type: "response.output_audio.done", ResponseID: r.id, ItemID: itemID}); err != nil {
			return err
		}
		if err := s.send(ctx, itemEvent{EventID: s.nextID("event"), Type: "response.output_audio_transcript.done", ResponseID: r.id, ItemID: itemID, Transcript: &transcript}); err != nil {
			return err
		}
	}
	released = true
	return s.end(ctx, r, nil, 20+len(chunks))
}

// deltaHead is the part of a response's output_audio.delta events that
// does not change from chunk to chunk.
func deltaHead(responseID, itemID string) []byte {
	rid, _ := json.Marshal(responseID) // strings always marshal
	iid, _ := json.Marshal(itemID)
	b := append([]byte(`{"type":"response.output_audio.delta","response_id":`), rid...)
	b = append(b, `,"item_id":`...)
	b = append(b, iid...)
	return append(b, `,"output_index":0,"content_index":0,"event_id":"`...)
}

// appendDelta builds one output_audio.delta from its head and chunk.
func (s *Session) appendDelta(b, head, chunk []byte) []byte {
	b = append(b, head...)
	b = append(b, s.nextID("event")...)
	b = append(b, `","delta":`...)
	if bytes.IndexFunc(chunk, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 || r >= 0x7f }) >= 0 {
		delta, _ := json.Marshal(string(chunk))
		b = append(b, delta...)
	} else { // base64, as always but in tests of malformed input
		b = append(append(append(b, '"'), chunk...), '"')
	}
	return append(b, '}')
}

// audioMs is the duration of base64 mu-law audio.
func audioMs(chunk []byte) int {
	return base64.StdEncoding.DecodedLen(len(chunk)) / 8
}
