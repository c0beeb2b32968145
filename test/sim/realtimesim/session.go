package realtimesim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
)

// Session is one simulated Realtime session. Safe for concurrent use.
type Session struct {
	srv   *Server
	conn  *websocket.Conn
	model string
	id    string
	seq   atomic.Int64  // event and object ids
	done  chan struct{} // closed when the connection has ended
	wg    sync.WaitGroup

	mu           sync.Mutex
	cfg          ports.SpeechConfig
	configured   chan struct{}
	isConfigured bool
	audio        [][]byte
	frames       int
	texts        []string
	responses    int
	truncs       []porttest.Truncation
	cancels      int
	streamed     int            // responses streamed (respond calls)
	itemAudioMs  map[string]int // assistant items: ms of audio sent
	active       *response

	vad vad // the Auto policy's state; reader goroutine only
}

// response is a response being streamed.
type response struct {
	id     string
	cancel chan struct{} // closed to cancel
	reason string        // why it was cancelled; set before cancel is closed
	once   sync.Once
	done   chan struct{} // closed when it has sent its last event
}

func (r *response) stop(reason string) {
	r.once.Do(func() {
		r.reason = reason
		close(r.cancel)
	})
}

func newSession(srv *Server, conn *websocket.Conn, model string) *Session {
	s := &Session{
		srv:         srv,
		conn:        conn,
		model:       model,
		done:        make(chan struct{}),
		configured:  make(chan struct{}),
		itemAudioMs: map[string]int{},
	}
	s.id = s.nextID("sess")
	return s
}

func (s *Session) nextID(prefix string) string {
	return prefix + "_" + strconv.FormatInt(s.seq.Add(1), 10)
}

// run answers the client until the connection ends, then waits for the
// session's responders.
func (s *Session) run(ctx context.Context) {
	defer s.wg.Wait()
	defer close(s.done)
	s.send(ctx, sessionEvent{EventID: s.nextID("event"), Type: "session.created", Session: s.info()})
	// Reads use a context without a Done channel (closing the connection
	// ends them), sparing coder/websocket a timer per frame, and reuse one
	// buffer: the simulator must stay cheap under the load test.
	var buf bytes.Buffer
	for {
		buf.Reset()
		_, r, err := s.conn.Reader(context.Background())
		if err == nil {
			_, err = buf.ReadFrom(r)
		}
		b := buf.Bytes()
		if err != nil {
			s.mu.Lock()
			if s.active != nil {
				s.active.stop("closed")
			}
			s.mu.Unlock()
			return
		}
		s.handle(ctx, b)
	}
}

// appendPrefix is how the gateway's adapter starts every append; the
// simulator reads those without encoding/json so that the load test
// measures the gateway, not the simulator.
var appendPrefix = []byte(`{"type":"input_audio_buffer.append","audio":"`)

func (s *Session) handle(ctx context.Context, b []byte) {
	if audio, ok := bytes.CutPrefix(b, appendPrefix); ok {
		if audio, ok := bytes.CutSuffix(audio, []byte(`"}`)); ok && bytes.IndexByte(audio, '\\') < 0 && bytes.IndexByte(audio, '"') < 0 {
			s.appendAudio(ctx, audio)
			return
		}
	}
	var e clientEvent
	if err := json.Unmarshal(b, &e); err != nil {
		s.sendError(ctx, "invalid_request_error", "invalid_json", "The event is not valid JSON.", "")
		return
	}
	switch e.Type {
	case "input_audio_buffer.append":
		s.appendAudio(ctx, []byte(e.Audio))
	case "session.update":
		s.update(ctx, e)
	case "conversation.item.create":
		s.mu.Lock()
		for _, c := range e.Item.Content {
			if c.Type == "input_text" {
				s.texts = append(s.texts, c.Text)
			}
		}
		s.mu.Unlock()
		s.send(ctx, itemAdded{EventID: s.nextID("event"), Type: "conversation.item.added"})
	case "response.create":
		s.mu.Lock()
		s.responses++
		s.mu.Unlock()
		if s.srv.opts.Auto != nil {
			s.autoReply(ctx)
		}
	case "conversation.item.truncate":
		s.truncate(ctx, e)
	case "response.cancel":
		s.mu.Lock()
		s.cancels++
		active := s.active
		s.mu.Unlock()
		if active == nil {
			s.sendError(ctx, "invalid_request_error", "response_cancel_not_active",
				"Cancellation failed: no active response found", e.EventID)
			return
		}
		active.stop("client_cancelled")
	default:
		s.sendError(ctx, "invalid_request_error", "invalid_value",
			"Invalid value: '"+e.Type+"'. Supported values are client event types.", e.EventID)
	}
}

// itemAdded acknowledges conversation.item.create (reduced to what the
// gateway ignores anyway).
type itemAdded struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
}

func (s *Session) appendAudio(ctx context.Context, audio []byte) {
	if f := s.srv.opts.OnAudio; f != nil {
		f(s, audio)
	}
	s.mu.Lock()
	s.frames++
	if !s.srv.opts.DropAudio {
		s.audio = append(s.audio, bytes.Clone(audio))
	}
	s.mu.Unlock()
	if s.srv.opts.Auto != nil {
		s.listen(ctx, audio)
	}
}

func (s *Session) update(ctx context.Context, e clientEvent) {
	in := e.Session.Audio.Input
	if e.Session.Type != "realtime" || in.Format.Type != "audio/pcmu" || e.Session.Audio.Output.Format.Type != "audio/pcmu" {
		s.sendError(ctx, "invalid_request_error", "invalid_value",
			"The simulator expects a realtime session with audio/pcmu in and out.", e.EventID)
		return
	}
	cfg := ports.SpeechConfig{Instructions: e.Session.Instructions, Voice: e.Session.Audio.Output.Voice}
	if in.TurnDetection != nil {
		cfg.TurnDetection = in.TurnDetection.Type
	}
	if in.Transcription != nil {
		cfg.TranscriptionModel = in.Transcription.Model
	}
	s.mu.Lock()
	s.cfg = cfg
	first := !s.isConfigured
	s.isConfigured = true
	s.mu.Unlock()
	s.send(ctx, sessionEvent{EventID: s.nextID("event"), Type: "session.updated", Session: s.info()})
	if first {
		close(s.configured)
	}
}

// info describes the session as the server sees it.
func (s *Session) info() sessionInfo {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	a := &audioConf{}
	a.Input.Format.Type = "audio/pcmu"
	a.Output.Format.Type = "audio/pcmu"
	a.Output.Voice = cfg.Voice
	if cfg.TurnDetection != "" {
		a.Input.TurnDetection = &turnDetection{Type: cfg.TurnDetection}
	}
	if cfg.TranscriptionModel != "" {
		a.Input.Transcription = &transcription{Model: cfg.TranscriptionModel}
	}
	return sessionInfo{
		Type: "realtime", Object: "realtime.session", ID: s.id, Model: s.model,
		OutputModalities: []string{"audio"}, Instructions: cfg.Instructions, Audio: a,
	}
}

func (s *Session) truncate(ctx context.Context, e clientEvent) {
	s.mu.Lock()
	s.truncs = append(s.truncs, porttest.Truncation{ItemID: e.ItemID, AudioEndMs: e.AudioEndMs})
	sent, known := s.itemAudioMs[e.ItemID]
	s.mu.Unlock()
	switch {
	case !known:
		s.sendError(ctx, "invalid_request_error", "item_not_found",
			"Item with item_id not found: "+e.ItemID, e.EventID)
	case e.AudioEndMs > sent:
		s.sendError(ctx, "invalid_request_error", "invalid_value",
			fmt.Sprintf("Audio content of %dms is shorter than requested audio_end_ms %d", sent, e.AudioEndMs), e.EventID)
	default:
		s.send(ctx, truncatedEvent{EventID: s.nextID("event"), Type: "conversation.item.truncated",
			ItemID: e.ItemID, ContentIndex: e.ContentIndex, AudioEndMs: e.AudioEndMs})
	}
}

// Say makes the model answer: response.created, the chunks (base64 audio)
// as output_audio.delta events of item itemID, output_audio.done, the
// transcript, then response.done with usage. It returns when all are sent;
// a response.cancel arriving meanwhile ends it early (status cancelled).
func (s *Session) Say(ctx context.Context, responseID, itemID, transcript string, chunks ...[]byte) error {
	return s.respond(ctx, responseID, itemID, transcript, chunks, 0)
}

// respond streams one response, waiting every between chunks.
func (s *Session) respond(ctx context.Context, responseID, itemID, transcript string, chunks [][]byte, every time.Duration) error {
	r := &response{id: responseID, cancel: make(chan struct{}), done: make(chan struct{})}
	defer close(r.done)
	s.mu.Lock()
	prev := s.active
	if prev != nil {
		prev.stop("superseded")
	}
	s.active = r
	s.streamed++
	number := s.streamed
	if _, ok := s.itemAudioMs[itemID]; !ok {
		s.itemAudioMs[itemID] = 0 // known, with no audio yet
	}
	s.mu.Unlock()
	// The response stops being active before its response.done is sent,
	// as with the real API: a response.cancel the client sends once it
	// has seen response.done finds no active response.
	inactive := func() {
		s.mu.Lock()
		if s.active == r {
			s.active = nil
		}
		s.mu.Unlock()
	}
	defer inactive()
	if prev != nil { // one response streams at a time, as with the real API
		select {
		case <-prev.done:
		case <-ctx.Done():
			return fmt.Errorf("realtimesim: respond: %w", ctx.Err())
		}
	}

	if err := s.send(ctx, responseEvent{EventID: s.nextID("event"), Type: "response.created",
		Response: responseInfo{Object: "realtime.response", ID: responseID, Status: "in_progress", Output: []struct{}{}}}); err != nil {
		return err
	}
	head := deltaHead(responseID, itemID)
	buf := make([]byte, 0, 512)
	status := "completed"
	var details *statusDetails
stream:
	for i, chunk := range chunks {
		if i > 0 && every > 0 {
			select {
			case <-time.After(every):
			case <-ctx.Done():
				return fmt.Errorf("realtimesim: say: %w", ctx.Err())
			case <-r.cancel:
			}
		}
		select {
		case <-r.cancel:
			status, details = "cancelled", &statusDetails{Type: "cancelled", Reason: r.reason}
			break stream
		default:
		}
		if f := s.srv.opts.OnDelta; f != nil {
			chunk = f(s, number, i, chunk)
		}
		buf = s.appendDelta(buf[:0], head, chunk)
		if err := s.write(ctx, buf); err != nil {
			return err
		}
		s.mu.Lock()
		s.itemAudioMs[itemID] += audioMs(chunk)
		s.mu.Unlock()
	}
	if status == "completed" {
		if err := s.send(ctx, itemEvent{EventID: s.nextID("event"), Type: "response.output_audio.done", ResponseID: responseID, ItemID: itemID}); err != nil {
			return err
		}
		if err := s.send(ctx, itemEvent{EventID: s.nextID("event"), Type: "response.output_audio_transcript.done", ResponseID: responseID, ItemID: itemID, Transcript: &transcript}); err != nil {
			return err
		}
	}
	inactive()
	return s.send(ctx, responseEvent{EventID: s.nextID("event"), Type: "response.done", Response: responseInfo{
		Object: "realtime.response", ID: responseID, Status: status, StatusDetails: details, Output: []struct{}{},
		Usage: &usageInfo{InputTokens: 10, OutputTokens: 20 + len(chunks), TotalTokens: 30 + len(chunks)},
	}})
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

// StartSpeech reports that the caller started speaking
// (input_audio_buffer.speech_started).
func (s *Session) StartSpeech(ctx context.Context, itemID string, audioStartMs int) error {
	return s.send(ctx, speechEvent{EventID: s.nextID("event"), Type: "input_audio_buffer.speech_started", ItemID: itemID, AudioStartMs: &audioStartMs})
}

// Fail sends an error event; a fatal one then closes the session with 1011
// (internal error).
func (s *Session) Fail(ctx context.Context, e ports.ModelError) error {
	if err := s.sendError(ctx, e.Type, e.Code, e.Message, e.EventID); err != nil {
		return err
	}
	if e.Fatal {
		return s.Hangup(ctx, websocket.StatusInternalError, "fatal error")
	}
	return nil
}

// Hangup closes the session from the server side with code (1001 is what
// the real API sends at the 60-minute limit) and waits for the close
// handshake.
func (s *Session) Hangup(ctx context.Context, code websocket.StatusCode, reason string) error {
	err := s.conn.Close(code, reason)
	if err != nil && websocket.CloseStatus(err) < 0 {
		return fmt.Errorf("realtimesim: hang up: %w", err)
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("realtimesim: hang up: %w", ctx.Err())
	}
}

func (s *Session) sendError(ctx context.Context, typ, code, message, eventID string) error {
	e := errorEvent{EventID: s.nextID("event"), Type: "error", Error: errorInfo{Type: typ, Message: message}}
	if code != "" {
		e.Error.Code = &code
	}
	if eventID != "" {
		e.Error.EventID = &eventID
	}
	return s.send(ctx, e)
}

func (s *Session) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("realtimesim: encode: %w", err)
	}
	return s.write(ctx, b)
}

func (s *Session) write(ctx context.Context, b []byte) error {
	if f := s.srv.opts.OnEvent; f != nil {
		f(b)
	}
	if err := s.conn.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("realtimesim: write: %w", err)
	}
	return nil
}

// Raw sends event as it is, as a text message: for tests of malformed or
// unusual server events.
func (s *Session) Raw(ctx context.Context, event []byte) error { return s.write(ctx, event) }

// Done is closed when the session's connection has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// WaitConfig waits until the client has configured the session and
// returns the configuration.
func (s *Session) WaitConfig(ctx context.Context) (ports.SpeechConfig, error) {
	select {
	case <-s.configured:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.cfg, nil
	case <-ctx.Done():
		return ports.SpeechConfig{}, fmt.Errorf("realtimesim: wait for session.update: %w", ctx.Err())
	}
}

// ReceivedAudio returns the caller audio frames, in order, as the base64
// text the client sent (none with Options.DropAudio).
func (s *Session) ReceivedAudio() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.audio...)
}

// Frames counts the caller audio frames received.
func (s *Session) Frames() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames
}

// ReceivedTexts returns the user texts, in order.
func (s *Session) ReceivedTexts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.texts...)
}

// ResponseRequests counts response.create events.
func (s *Session) ResponseRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.responses
}

// Truncations returns the truncations received, in order.
func (s *Session) Truncations() []porttest.Truncation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]porttest.Truncation(nil), s.truncs...)
}

// Cancels counts response.cancel events.
func (s *Session) Cancels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancels
}
