package twiliorest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults used when Options leave them empty.
const (
	DefaultAccountSID = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	DefaultAuthToken  = "0123456789abcdef0123456789abcdef" // alphanumeric, as twilio-go requires
)

// MaxBody is the longest message body Twilio accepts, in characters.
const MaxBody = 1600

// route is the Messages endpoint.
const route = "POST /2010-04-01/Accounts/{AccountSid}/Messages.json"

// Options configure a Server.
type Options struct {
	AccountSID string // DefaultAccountSID if empty
	AuthToken  string // DefaultAuthToken if empty
}

// Message is a message the simulator accepted, as the form carried it.
type Message struct {
	SID                 string
	To, From            string
	MessagingServiceSID string
	Body                string
	ContentSID          string
	ContentVariables    string // JSON text, as sent
}

// Failure is a scripted refusal: the HTTP status and Twilio error code (for
// example 400 and 63016, 400 and 21211, 429 and 20429, or 500 and 20500).
type Failure struct {
	Status  int
	Code    int
	Message string // a default is used when empty
	// RetryAfter, when positive, is sent as a Retry-After header, in whole
	// seconds (rounded up), as with a 429.
	RetryAfter time.Duration
	// Hangup makes the simulator accept the message (it is recorded, as
	// if Twilio had queued it) and then close the connection without an
	// answer: the client sent the request and lost the response. Status
	// and Code are ignored.
	Hangup bool
}

// Attempt is one request the simulator received on the Messages route, in
// the order they arrived: when, what it answered (0 for a request it hung
// up on) and the form's To and Body.
type Attempt struct {
	At       time.Time
	Status   int
	To, Body string
}

// Server is a running simulator. Close it when done.
type Server struct {
	srv        *httptest.Server
	ln         *gateListener
	accountSID string
	authToken  string
	closed     chan struct{}
	once       sync.Once

	mu       sync.Mutex
	delay    time.Duration
	failures []Failure
	messages []Message
	attempts []Attempt
	requests int
	calls    calls
}

// New starts a simulator on a loopback port.
func New(opts Options) *Server {
	s := &Server{accountSID: opts.AccountSID, authToken: opts.AuthToken, closed: make(chan struct{})}
	if s.accountSID == "" {
		s.accountSID = DefaultAccountSID
	}
	if s.authToken == "" {
		s.authToken = DefaultAuthToken
	}
	mux := http.NewServeMux()
	mux.HandleFunc(route, s.createMessage)
	mux.HandleFunc(callsRoute, s.updateCall)
	s.srv = httptest.NewUnstartedServer(mux)
	s.ln = &gateListener{ln: s.srv.Listener, addr: s.srv.Listener.Addr(), resumed: make(chan struct{})}
	s.srv.Listener = s.ln
	s.srv.Start()
	return s
}

// URL is the API base URL (for TWILIO_API_BASE_URL), without a trailing
// slash.
func (s *Server) URL() string { return s.srv.URL }

// AccountSID is the account the server accepts.
func (s *Server) AccountSID() string { return s.accountSID }

// AuthToken is the auth token the server accepts.
func (s *Server) AuthToken() string { return s.authToken }

// Close ends delayed requests at once and shuts the server down.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closed) })
	s.srv.Close()
}

// Refuse stops listening, until Listen: connections to URL() are refused
// (nothing listens on the port), as when Twilio cannot be reached at all.
// Open connections, idle keep-alive ones included, are closed, so that a
// client cannot go on using them.
func (s *Server) Refuse() {
	s.ln.refuse()
	s.srv.CloseClientConnections()
}

// Listen listens on URL()'s port again after Refuse. It fails when the
// port was taken meanwhile.
func (s *Server) Listen() error { return s.ln.resume() }

// SetDelay makes every request take d before it is answered.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// FailNext makes the next authenticated, valid messages fail, one failure
// each, in order (see FailNextCallUpdate for calls).
func (s *Server) FailNext(fs ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fs...)
}

// Messages returns the accepted messages in the order they arrived.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Requests counts the requests received, refused ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Attempts returns the requests received on the Messages route, refused
// ones included, in the order they arrived.
func (s *Server) Attempts() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Attempt(nil), s.attempts...)
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	delay := s.arrive()
	// The attempt is recorded before the client can see its outcome.
	var once sync.Once
	record := func(status int) {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.attempts = append(s.attempts, Attempt{At: at, Status: status, To: r.PostForm.Get("To"), Body: r.PostForm.Get("Body")})
		})
	}
	defer record(0)
	w = &recorder{ResponseWriter: w, record: record}
	if !s.sleep(r, delay) {
		return
	}

	if !s.authorized(w, r) {
		return
	}
	m := Message{
		To: r.PostForm.Get("To"), From: r.PostForm.Get("From"),
		MessagingServiceSID: r.PostForm.Get("MessagingServiceSid"),
		Body:                r.PostForm.Get("Body"),
		ContentSID:          r.PostForm.Get("ContentSid"),
		ContentVariables:    r.PostForm.Get("ContentVariables"),
	}
	if f, bad := validate(m); bad {
		writeError(w, f)
		return
	}

	s.mu.Lock()
	var f *Failure
	if len(s.failures) > 0 {
		f = &s.failures[0]
		s.failures = s.failures[1:]
	}
	if f != nil && !f.Hangup {
		s.mu.Unlock()
		writeError(w, *f)
		return
	}
	m.SID = newSID()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	if f != nil {
		record(0)
		hangUp(w)
		return
	}

	now := time.Now().UTC().Format(time.RFC1123Z)
	status := "queued"
	if m.MessagingServiceSID != "" {
		status = "accepted"
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"account_sid": s.accountSID, "api_version": "2010-04-01", "sid": m.SID,
		"to": m.To, "from": nullable(m.From), "messaging_service_sid": nullable(m.MessagingServiceSID),
		"body": m.Body, "status": status, "direction": "outbound-api",
		"num_media": "0", "num_segments": "1", "price": nil, "price_unit": "USD",
		"error_code": nil, "error_message": nil,
		"date_created": now, "date_updated": now, "date_sent": nil,
		"uri":              "/2010-04-01/Accounts/" + s.accountSID + "/Messages/" + m.SID + ".json",
		"subresource_uris": map[string]string{"media": "/2010-04-01/Accounts/" + s.accountSID + "/Messages/" + m.SID + "/Media.json"},
	})
}

// authorized checks the request's credentials (HTTP Basic, the account's
// sid and auth token) and account, and parses its form; it answers a
// request that fails them like Twilio and reports false.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || user != s.accountSID || pass != s.authToken {
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: 20003, Message: "Authenticate"})
		return false
	}
	if r.PathValue("AccountSid") != s.accountSID {
		writeError(w, notFound)
		return false
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 21600, Message: "Could not parse the form."})
		return false
	}
	return true
}

// notFound is Twilio's answer for a resource that does not exist.
var notFound = Failure{Status: http.StatusNotFound, Code: 20404, Message: "The requested resource was not found"}

// validate applies Twilio's checks of a new message.
func validate(m Message) (Failure, bool) {
	switch {
	case m.To == "":
		return Failure{Status: http.StatusBadRequest, Code: 21604, Message: "A 'To' phone number is required."}, true
	case m.From == "" && m.MessagingServiceSID == "":
		return Failure{Status: http.StatusBadRequest, Code: 21603, Message: "A 'From' phone number is required."}, true
	case m.Body == "" && m.ContentSID == "":
		return Failure{Status: http.StatusBadRequest, Code: 21602, Message: "Message body is required."}, true
	case utf8.RuneCountInString(m.Body) > MaxBody:
		return Failure{Status: http.StatusBadRequest, Code: 21617, Message: "The concatenated message body exceeds the 1600 character limit."}, true
	case m.ContentVariables != "" && !json.Valid([]byte(m.ContentVariables)):
		return Failure{Status: http.StatusBadRequest, Code: 21656, Message: "The ContentVariables Parameter is invalid."}, true
	}
	return Failure{}, false
}

// arrive counts a request and returns the delay it is to wait.
func (s *Server) arrive() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	return s.delay
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

// writeError answers with Twilio's error body.
func writeError(w http.ResponseWriter, f Failure) {
	if f.Message == "" {
		f.Message = fmt.Sprintf("Simulated error %d", f.Code)
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds()))))
	}
	writeJSON(w, f.Status, map[string]any{
		"code": f.Code, "message": f.Message, "status": f.Status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", f.Code),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func newSID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "SM" + hex.EncodeToString(b)
}

// hangUp closes the request's connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("twiliorest: hang up: %v", err)) // an http.Server's writer can always be hijacked
	}
	_ = conn.Close()
}

// recorder reports the status a handler answers with before writing it.
type recorder struct {
	http.ResponseWriter
	record func(status int)
}

func (r *recorder) WriteHeader(status int) {
	r.record(status)
	r.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the connection (Hijack).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
