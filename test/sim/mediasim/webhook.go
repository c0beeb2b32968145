package mediasim

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/convgateway/gateway/adapters/twilio/signature"
)

// CallRequest is the voice webhook Twilio sends when a call comes in.
type CallRequest struct {
	// URL is where the webhook is POSTed, e.g.
	// http://127.0.0.1:5050/incoming-call.
	URL string
	// SignedURL is the URL the signature covers: the address Twilio was
	// configured with (PUBLIC_URL + /incoming-call). Empty means URL.
	SignedURL string
	// AuthToken signs the request; empty sends it unsigned.
	AuthToken string
	CallSid   string
	// AccountSid, From and To are the call's form fields.
	AccountSid, From, To string
	// HTTPClient sends the request; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Answer is the gateway's answer to a voice webhook, with its TwiML parsed.
type Answer struct {
	// Verbs are the TwiML verbs in order (e.g. Connect, Say, Hangup).
	Verbs []string
	// Reject is set when the call was rejected (<Reject/>).
	Reject bool
	// StreamURL and Params are the <Connect><Stream> and its
	// <Parameter>s.
	StreamURL string
	Params    map[string]string
	// Say holds the texts of the <Say> verbs.
	Say []string
}

// PlaceCall POSTs the voice webhook, signed as Twilio signs it, and parses
// the TwiML. A status other than 200 is an error naming it.
func PlaceCall(ctx context.Context, req CallRequest) (Answer, error) {
	form := url.Values{
		"CallSid":    {req.CallSid},
		"AccountSid": {req.AccountSid},
		"From":       {req.From},
		"To":         {req.To},
		"CallStatus": {"ringing"},
		"Direction":  {"inbound"},
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return Answer{}, fmt.Errorf("mediasim: place call: %w", err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if req.AuthToken != "" {
		signed := req.SignedURL
		if signed == "" {
			signed = req.URL
		}
		r.Header.Set(signature.Header, signature.Sign(req.AuthToken, signed, form))
	}
	hc := req.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(r)
	if err != nil {
		return Answer{}, fmt.Errorf("mediasim: place call: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("mediasim: place call: read answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("mediasim: place call: status %d", res.StatusCode)
	}
	return parseTwiML(body)
}

// parseTwiML reads the verbs of a voice TwiML <Response>.
func parseTwiML(body []byte) (Answer, error) {
	var doc struct {
		XMLName xml.Name  `xml:"Response"`
		Say     []string  `xml:"Say"`
		Reject  *struct{} `xml:"Reject"`
		Connect struct {
			Stream struct {
				URL    string `xml:"url,attr"`
				Params []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:"value,attr"`
				} `xml:"Parameter"`
			} `xml:"Stream"`
		} `xml:"Connect"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return Answer{}, fmt.Errorf("mediasim: the answer is not TwiML: %w", err)
	}
	a := Answer{Reject: doc.Reject != nil, StreamURL: doc.Connect.Stream.URL, Say: doc.Say, Params: map[string]string{}}
	for _, p := range doc.Connect.Stream.Params {
		a.Params[p.Name] = p.Value
	}
	dec := xml.NewDecoder(strings.NewReader(string(body)))
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if depth == 1 {
				a.Verbs = append(a.Verbs, el.Name.Local)
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return a, nil
}

// StreamSignature is the x-twilio-signature Twilio puts on the upgrade of
// the media stream it opens at streamURL (the wss URL of the TwiML, with
// no parameters).
func StreamSignature(authToken, streamURL string) string {
	return signature.Sign(authToken, streamURL, nil)
}
