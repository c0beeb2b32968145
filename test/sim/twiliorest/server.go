package twiliorest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
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

// route is the one endpoint the simulator serves.
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
// example 400 and 63016, 400 and 21211, or 500 and 20500).
type Failure struct {
	Status  int
	Code    int
	Message string // a default is used when empty
}

// Server is a running simulator. Close it when done.
type Server struct {
	srv        *httptest.Server
	accountSID string
	authToken  string
	closed     chan struct{}
	once       sync.Once

	mu       sync.Mutex
	delay    time.Duration
	failures []Failure
	messages []Message
	requests int
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
	s.srv = httptest.NewServer(mux)
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

// SetDelay makes every request take d before it is answered.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// FailNext makes the next authenticated requests fail, one failure each, in
// order.
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

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	delay := s.delay
	s.mu.Unlock()
	if !s.sleep(r, delay) {
		return
	}

	user, pass, ok := r.BasicAuth()
	if !ok || user != s.accountSID || pass != s.authToken {
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: 20003, Message: "Authenticate"})
		return
	}
	if r.PathValue("AccountSid") != s.accountSID {
		writeError(w, Failure{Status: http.StatusNotFound, Code: 20404, Message: "The requested resource was not found"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 21600, Message: "Could not parse the form."})
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
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		s.mu.Unlock()
		writeError(w, f)
		return
	}
	m.SID = newSID()
	s.messages = append(s.messages, m)
	s.mu.Unlock()

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
