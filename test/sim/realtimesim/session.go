package realtimesim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
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
	conf         Config
	configured   chan struct{}
	isConfigured bool
	audio        [][]byte
	frames       int
	inputMs      int // ms of caller audio received
	responses    int
	heard        []peer.Heard // the truncations received
	cancels      int
	streamed     int            // responses streamed (respond calls)
	itemAudioMs  map[string]int // assistant items: ms of audio sent
	active       *response
	ended        bool               // the connection has ended: no responder may start
	refused      int                // response.create events refused (a response was active)
	calls        map[string]string  // call_id to name, of the model's function calls
	results      []ports.ToolResult // function_call_output items received
	unanswered   []ports.ToolResult // results received since a response last began

	vad vad // the Auto policy's state; reader goroutine only
}

// Config is a session's configuration as the client sent it
// (session.update).
type Config struct {
	Instructions       string
	Voice              string
	TurnDetection      string // "server_vad", "semantic_vad"; empty without turn detection
	TranscriptionModel string // empty when the caller is not transcribed
	// Tools are the function tools declared (their parameters as sent),
	// MCP the hosted MCP servers, in order; nil when none.
	Tools []ports.ToolSpec
	MCP   []ports.MCPServer
	// ToolChoice is the session's tool_choice as sent ("auto", or the
	// JSON of a forced tool); empty when not sent.
	ToolChoice string
}

func newSession(srv *Server, conn *websocket.Conn, model string) *Session {
	s := &Session{
		srv:         srv,
		conn:        conn,
		model:       model,
		done:        make(chan struct{}),
		configured:  make(chan struct{}),
		itemAudioMs: map[string]int{},
		calls:       map[string]string{},
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
			s.ended = true
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
		s.createItem(ctx, e)
	case "response.create":
		s.responseCreate(ctx, e)
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

func (s *Session) appendAudio(ctx context.Context, audio []byte) {
	if f := s.srv.opts.OnAudio; f != nil {
		f(s, audio)
	}
	s.mu.Lock()
	s.frames++
	s.inputMs += audioMs(audio)
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
	conf := Config{Instructions: e.Session.Instructions, Voice: e.Session.Audio.Output.Voice}
	if err := declare(&conf, e.Session.Tools, e.Session.ToolChoice); err != "" {
		s.sendError(ctx, "invalid_request_error", "invalid_value", err, e.EventID)
		return
	}
	if in.TurnDetection != nil {
		conf.TurnDetection = in.TurnDetection.Type
	}
	if in.Transcription != nil {
		conf.TranscriptionModel = in.Transcription.Model
	}
	s.mu.Lock()
	s.conf = conf
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
	cfg := s.conf
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
	s.heard = append(s.heard, peer.Heard{Utterance: e.ItemID, Ms: e.AudioEndMs})
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
