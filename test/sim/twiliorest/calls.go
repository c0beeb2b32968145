package twiliorest

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// callsRoute is the endpoint that updates a live call. ServeMux wildcards
// take whole segments: CallFile is the call sid followed by ".json".
const callsRoute = "POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallFile}"

// The statuses of a call the simulator reports.
const (
	CallInProgress = "in-progress"
	CallCompleted  = "completed"
)

// notInProgress is Twilio's answer to an update of a call that is over
// (error 21220, "Invalid call state").
var notInProgress = Failure{Status: http.StatusBadRequest, Code: 21220, Message: "Call is not in-progress. Cannot redirect."}

// CallUpdate is an update of a live call the simulator accepted, as its
// form carried it.
type CallUpdate struct {
	At      time.Time
	CallSID string
	Status  string // "completed" or "canceled"; "" when the update only redirects
	Twiml   string // TwiML to run instead of the call's own
	URL     string // where to fetch that TwiML (Url)
}

// Dial is the <Dial> verb of an update's TwiML: the caller id and the
// numbers and SIP addresses it dials, in order.
type Dial struct {
	CallerID string
	Numbers  []string
	Sips     []string
}

// Dial returns the first <Dial> of the update's TwiML, parsed as XML (the
// attributes' order, which twilio-go draws at random, does not matter);
// ok is false when the update carries no TwiML or no <Dial>.
func (u CallUpdate) Dial() (d Dial, ok bool) {
	var doc struct {
		Dials []struct {
			CallerID string   `xml:"callerId,attr"`
			Numbers  []string `xml:"Number"`
			Sips     []string `xml:"Sip"`
		} `xml:"Dial"`
	}
	if err := xml.Unmarshal([]byte(u.Twiml), &doc); err != nil || len(doc.Dials) == 0 {
		return Dial{}, false
	}
	first := doc.Dials[0]
	d.CallerID = first.CallerID
	for _, n := range first.Numbers {
		d.Numbers = append(d.Numbers, strings.TrimSpace(n))
	}
	for _, s := range first.Sips {
		d.Sips = append(d.Sips, strings.TrimSpace(s))
	}
	return d, true
}

// calls is the simulator's state of calls, guarded by Server.mu. Every
// call sid names a call in progress until an update completes it or the
// test says otherwise.
type calls struct {
	status   map[string]string // CallCompleted, or "" for a call unknown; in progress when absent
	failures []Failure
	updates  []CallUpdate
	changed  chan struct{} // closed and replaced at each accepted update
}

// CallUpdates returns the accepted updates of calls in the order they
// arrived.
func (s *Server) CallUpdates() []CallUpdate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CallUpdate(nil), s.calls.updates...)
}

// WaitCallUpdates blocks until at least n updates were accepted and
// returns them all, or returns ctx's error.
func (s *Server) WaitCallUpdates(ctx context.Context, n int) ([]CallUpdate, error) {
	for {
		s.mu.Lock()
		if len(s.calls.updates) >= n {
			got := append([]CallUpdate(nil), s.calls.updates...)
			s.mu.Unlock()
			return got, nil
		}
		if s.calls.changed == nil {
			s.calls.changed = make(chan struct{})
		}
		changed := s.calls.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("twiliorest: wait for %d call updates: %w", n, ctx.Err())
		}
	}
}

// CallStatus returns CallInProgress, CallCompleted, or "" for a call
// made unknown by ForgetCall.
func (s *Server) CallStatus(sid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	status, known := s.callStatus(sid)
	if !known {
		return ""
	}
	return status
}

// CompleteCall ends the call sid, as when the caller hangs up: its
// updates are then refused with a 400 and error 21220.
func (s *Server) CompleteCall(sid string) { s.setCallStatus(sid, CallCompleted) }

// ForgetCall makes the call sid unknown: its updates are then refused
// with a 404 and error 20404.
func (s *Server) ForgetCall(sid string) { s.setCallStatus(sid, "") }

// FailNextCallUpdate makes the next authenticated, well-formed updates of
// calls in progress fail, one failure each, in order. A Hangup failure
// applies and records the update, then closes the connection without an
// answer.
func (s *Server) FailNextCallUpdate(fs ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls.failures = append(s.calls.failures, fs...)
}

func (s *Server) setCallStatus(sid, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls.set(sid, status)
}

// set records the status of the call sid. The caller holds Server.mu.
func (c *calls) set(sid, status string) {
	if c.status == nil {
		c.status = make(map[string]string)
	}
	c.status[sid] = status
}

// callStatus returns the status of the call sid, and whether it is known.
// The caller holds s.mu.
func (s *Server) callStatus(sid string) (string, bool) {
	status, set := s.calls.status[sid]
	switch {
	case !set:
		return CallInProgress, true
	case status == "":
		return "", false
	}
	return status, true
}

func (s *Server) updateCall(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if !s.sleep(r, s.arrive()) || !s.authorized(w, r) {
		return
	}
	sid, ok := strings.CutSuffix(r.PathValue("CallFile"), ".json")
	if !ok || sid == "" {
		writeError(w, notFound)
		return
	}
	u := CallUpdate{At: at, CallSID: sid, Status: r.PostForm.Get("Status"), Twiml: r.PostForm.Get("Twiml"), URL: r.PostForm.Get("Url")}
	if f, bad := validateUpdate(u); bad {
		writeError(w, f)
		return
	}

	s.mu.Lock()
	status, known := s.callStatus(sid)
	var f *Failure
	switch {
	case !known:
		f = &notFound
	case status != CallInProgress:
		f = &notInProgress
	case len(s.calls.failures) > 0:
		f = &s.calls.failures[0]
		s.calls.failures = s.calls.failures[1:]
	}
	if f != nil && !f.Hangup {
		s.mu.Unlock()
		writeError(w, *f)
		return
	}
	if u.Status == CallCompleted {
		s.calls.set(sid, CallCompleted)
		status = CallCompleted
	}
	s.calls.updates = append(s.calls.updates, u)
	if s.calls.changed != nil {
		close(s.calls.changed)
		s.calls.changed = nil
	}
	s.mu.Unlock()
	if f != nil {
		hangUp(w)
		return
	}

	now := time.Now().UTC().Format(time.RFC1123Z)
	writeJSON(w, http.StatusOK, map[string]any{
		"account_sid": s.accountSID, "api_version": "2010-04-01", "sid": sid,
		"status": status, "direction": "inbound", "to": nil, "from": nil,
		"parent_call_sid": nil, "date_created": now, "date_updated": now,
		"start_time": now, "end_time": nil, "duration": nil, "price": nil, "price_unit": "USD",
		"uri": "/2010-04-01/Accounts/" + s.accountSID + "/Calls/" + sid + ".json",
	})
}

// validateUpdate applies Twilio's checks of a call update: Twiml and Url
// are exclusive, Status is "completed" (hang up) or "canceled" (which
// leaves a call in progress alone), and TwiML is a <Response> document.
// Codes 12100 (a document that does not parse) and 20001 (any other
// invalid form) are the simulator's choice.
func validateUpdate(u CallUpdate) (Failure, bool) {
	invalid := func(msg string) (Failure, bool) {
		return Failure{Status: http.StatusBadRequest, Code: 20001, Message: msg}, true
	}
	switch {
	case u.Status == "" && u.Twiml == "" && u.URL == "":
		return invalid("One of Url, Twiml or Status is required.")
	case u.Twiml != "" && u.URL != "":
		return invalid("Twiml and Url are mutually exclusive.")
	case u.Status != "" && u.Status != CallCompleted && u.Status != "canceled":
		return invalid("Status must be completed or canceled.")
	case u.Twiml != "":
		var root struct{ XMLName xml.Name }
		if err := xml.Unmarshal([]byte(u.Twiml), &root); err != nil || root.XMLName.Local != "Response" {
			return Failure{Status: http.StatusBadRequest, Code: 12100, Message: "Document parse failure: the Twiml is not a <Response> document."}, true
		}
	}
	return Failure{}, false
}
