package openairest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Routes, as Calls and Bodies name them.
const (
	RouteCreateConversation = "POST /v1/conversations"
	RouteCreateResponse     = "POST /v1/responses"
	RouteCreateItems        = "POST /v1/conversations/{conv}/items"
	RouteCreateThread       = "POST /v1/threads"
	RouteCreateMessage      = "POST /v1/threads/{thread}/messages"
	RouteListMessages       = "GET /v1/threads/{thread}/messages"
	RouteCreateRun          = "POST /v1/threads/{thread}/runs"
	RouteGetRun             = "GET /v1/threads/{thread}/runs/{run}"
	RouteCancelRun          = "POST /v1/threads/{thread}/runs/{run}/cancel"
	RouteSubmitToolOutputs  = "POST /v1/threads/{thread}/runs/{run}/submit_tool_outputs"
)

// DefaultAPIKey is the key a Server accepts when Options.APIKey is empty.
const DefaultAPIKey = "sk-sim-0123456789"

// Options configure a Server.
type Options struct {
	// APIKey is the bearer key the server accepts (DefaultAPIKey if empty).
	APIKey string
}

// ReplyFunc computes the assistant's answer to text on a conversation or
// thread. It is called without the server's lock held.
type ReplyFunc func(threadID, text string) string

// Script shapes the next reply: the next POST /v1/responses that starts a
// turn (one with a message: requests that only carry tool outputs continue
// the turn and take no script) or the next run created. The zero Script is
// a normal, immediate, completed reply.
type Script struct {
	// HTTPStatus, when set, fails the request with this status and an
	// OpenAI error body whose code is ErrorCode. Nothing is recorded in the
	// thread.
	HTTPStatus int
	// Status is the final status. Responses: "completed" (default),
	// "failed", "incomplete". Runs: "completed" (default), "failed",
	// "cancelled", "expired", "incomplete", "requires_action".
	Status string
	// ErrorCode is error.code (responses) or last_error.code (runs) of a
	// failed reply; a default is used when empty.
	ErrorCode string
	// Steps are the statuses a run reports before its final one, one per
	// poll, starting with the run's creation (default queued, in_progress).
	Steps []string
	// Delay is how long the reply takes: POST /v1/responses answers after
	// Delay; a run reaches its final status no earlier than Delay after its
	// creation. Zero means the server's default (SetDelay).
	Delay time.Duration
	// Tool, when set and Status is "completed", makes the model call a
	// tool before it answers (see ToolScript). Responses: only in a
	// conversation. A run with Status "requires_action" and no Tool calls a
	// function "lookup" (declared or not) and completes once answered.
	Tool *ToolScript
}

// Item is one entry of a conversation's or thread's history.
type Item struct {
	Role string // "user" or "assistant"
	Text string
}

// Server is a running simulator. Close it when done.
type Server struct {
	srv    *httptest.Server
	apiKey string
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	reply    ReplyFunc
	delay    time.Duration
	scripts  []Script
	failures []failure
	seq      int
	convs    map[string]*conversation
	threads  map[string]*thread
	calls    map[string]int
	bodies   map[string][][]byte
	overlaps int
}

type failure struct {
	status int
	code   string
}

// New starts a simulator on a loopback port.
func New(opts Options) *Server {
	s := &Server{
		apiKey:  opts.APIKey,
		closed:  make(chan struct{}),
		reply:   func(_, text string) string { return "echo: " + text },
		convs:   make(map[string]*conversation),
		threads: make(map[string]*thread),
		calls:   make(map[string]int),
		bodies:  make(map[string][][]byte),
	}
	if s.apiKey == "" {
		s.apiKey = DefaultAPIKey
	}
	mux := http.NewServeMux()
	mux.HandleFunc(RouteCreateConversation, s.createConversation)
	mux.HandleFunc(RouteCreateResponse, s.createResponse)
	mux.HandleFunc(RouteCreateItems, s.createItems)
	mux.HandleFunc(RouteCreateThread, s.assistants(s.createThread))
	mux.HandleFunc(RouteCreateMessage, s.assistants(s.createMessage))
	mux.HandleFunc(RouteListMessages, s.assistants(s.listMessages))
	mux.HandleFunc(RouteCreateRun, s.assistants(s.createRun))
	mux.HandleFunc(RouteGetRun, s.assistants(s.getRun))
	mux.HandleFunc(RouteCancelRun, s.assistants(s.cancelRun))
	mux.HandleFunc(RouteSubmitToolOutputs, s.assistants(s.submitToolOutputs))
	s.srv = httptest.NewServer(s.middleware(mux))
	return s
}

// URL is the API base URL, ending in /v1 (for OPENAI_BASE_URL).
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// APIKey is the key the server accepts.
func (s *Server) APIKey() string { return s.apiKey }

// Close ends delayed replies at once and shuts the server down, waiting for
// requests in flight.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closed) })
	s.srv.Close()
}

// SetReply replaces the reply function (default: "echo: " + text).
func (s *Server) SetReply(f ReplyFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = f
}

// SetDelay sets how long every reply takes unless its Script says otherwise.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Next queues scripts for the next replies, in order.
func (s *Server) Next(scripts ...Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts = append(s.scripts, scripts...)
}

// FailNextRequest makes the next authorized request, whatever its route,
// fail with status and an OpenAI error body with code.
func (s *Server) FailNextRequest(status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{status, code})
}

// Calls counts the requests received on route (one of the Route
// constants), failed ones included.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

// Bodies returns the request bodies received on route, in order.
func (s *Server) Bodies(route string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.bodies[route]))
	copy(out, s.bodies[route])
	return out
}

// Overlaps counts the times a reply was requested on a conversation or
// thread while another reply on it was still in progress (for a thread:
// a run created while another was active, which the API refuses).
func (s *Server) Overlaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlaps
}

// History returns the items of a conversation or thread, oldest first, or
// nil if there is no such id.
func (s *Server) History(id string) []Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.convs[id]; ok {
		return append([]Item(nil), c.items...)
	}
	if t, ok := s.threads[id]; ok {
		items := make([]Item, len(t.messages))
		for i, m := range t.messages {
			items[i] = Item{Role: m.role, Text: m.text}
		}
		return items
	}
	return nil
}

// ToolOutputs returns the tool outputs a conversation or thread received,
// in order, or nil if there is no such id.
func (s *Server) ToolOutputs(id string) []ToolOutput {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.convs[id]; ok {
		return append([]ToolOutput(nil), c.outputs...)
	}
	if t, ok := s.threads[id]; ok {
		return append([]ToolOutput(nil), t.outputs...)
	}
	return nil
}

// Delete forgets a conversation or thread, as if it had been deleted (or
// had expired): requests naming it get 404 from now on. It reports whether
// there was such an id.
func (s *Server) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, conv := s.convs[id]
	_, thread := s.threads[id]
	delete(s.convs, id)
	delete(s.threads, id)
	return conv || thread
}

// middleware counts and records requests, checks the bearer key and
// applies FailNextRequest.
func (s *Server) middleware(next *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := next.Handler(r)
		var body []byte
		if r.Body != nil {
			var err error
			body, err = readAll(r)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalid_request_error", "", "could not read the body")
				return
			}
		}
		s.mu.Lock()
		if pattern != "" {
			s.calls[pattern]++
			if r.Method == http.MethodPost {
				s.bodies[pattern] = append(s.bodies[pattern], body)
			}
		}
		s.mu.Unlock()

		if r.Header.Get("Authorization") != "Bearer "+s.apiKey {
			writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
			return
		}
		s.mu.Lock()
		var f *failure
		if len(s.failures) > 0 {
			f = &s.failures[0]
			s.failures = s.failures[1:]
		}
		s.mu.Unlock()
		if f != nil {
			writeError(w, f.status, errorType(f.status), f.code, "simulated failure")
			return
		}
		r.Body = newBody(body)
		next.ServeHTTP(w, r)
	})
}

// assistants guards an Assistants API route with the beta header check.
func (s *Server) assistants(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("OpenAI-Beta") != "assistants=v2" {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_beta",
				"You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by setting the header 'OpenAI-Beta: assistants=v2'.")
			return
		}
		h(w, r)
	}
}

// nextScript pops the next script and fills in defaults. Call with s.mu held.
func (s *Server) nextScriptLocked() Script {
	var sc Script
	if len(s.scripts) > 0 {
		sc = s.scripts[0]
		s.scripts = s.scripts[1:]
	}
	if sc.Status == "" {
		sc.Status = "completed"
	}
	if sc.Delay == 0 {
		sc.Delay = s.delay
	}
	return sc
}

// newIDLocked returns a fresh id with prefix. Call with s.mu held.
func (s *Server) newIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s_sim%08d", prefix, s.seq)
}

// sleep waits d, or until the request or the server ends; it reports
// whether the full time passed.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	return false
}

// decode reads a JSON body into v, answering 400 when it is not JSON.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, _ := readAll(r)
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with OpenAI's error envelope.
func writeError(w http.ResponseWriter, status int, typ, code, message string) {
	var c any
	if code != "" {
		c = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"message": message, "type": typ, "param": nil, "code": c,
	}})
}

func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

func now() int64 { return time.Now().Unix() }
