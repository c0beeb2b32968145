package signature

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/twilio/twilio-go/client"
)

// Header is the request header carrying Twilio's signature. The WebSocket
// upgrade sends it in lower case; HTTP header names are case-insensitive.
const Header = "X-Twilio-Signature"

var (
	// ErrMissing: the request carries no X-Twilio-Signature.
	ErrMissing = errors.New("signature: missing X-Twilio-Signature")
	// ErrInvalid: the signature does not match the URL and parameters.
	ErrInvalid = errors.New("signature: invalid X-Twilio-Signature")
)

// Validator checks Twilio request signatures against one account's auth
// token. It never logs the token and never puts it into an error.
//
// A Validator is immutable and safe for concurrent use.
type Validator struct {
	rv        client.RequestValidator
	publicURL string // without a trailing slash; empty: use the request's host
}

// New returns a Validator for authToken. publicURL is the https base URL
// Twilio calls (for example "https://gw.example.com"); when it is empty the
// request's Host header and X-Forwarded-Proto are trusted instead, which is
// only right when nothing rewrites them (the caller should warn at start).
func New(authToken, publicURL string) *Validator {
	return &Validator{
		rv:        client.NewRequestValidator(authToken),
		publicURL: strings.TrimRight(publicURL, "/"),
	}
}

// ValidateForm checks the signature of a form POST webhook. form holds the
// POST parameters (r.PostForm); the URL is the public base URL plus the
// request's path and query string. The public base URL is scheme and host
// only: a path prefix stripped by a proxy is not restored. Only the first
// value of each parameter counts, as in twilio-go. It returns ErrMissing or
// ErrInvalid.
func (v *Validator) ValidateForm(r *http.Request, form url.Values) error {
	sig := r.Header.Get(Header)
	if sig == "" {
		return ErrMissing
	}
	params := make(map[string]string, len(form))
	for k, vs := range form {
		if len(vs) > 0 {
			params[k] = vs[0] // twilio-go signs one value per name
		}
	}
	if !v.rv.Validate(v.base(r, false)+r.URL.RequestURI(), params, sig) {
		return ErrInvalid
	}
	return nil
}

// ValidateUpgrade checks the signature of a WebSocket upgrade request, which
// Twilio signs over the wss URL (the public base URL with https replaced by
// wss, plus the path) with no parameters. It returns ErrMissing or
// ErrInvalid; the caller decides whether a missing signature is acceptable.
func (v *Validator) ValidateUpgrade(r *http.Request) error {
	sig := r.Header.Get(Header)
	if sig == "" {
		return ErrMissing
	}
	if !v.rv.Validate(v.WebSocketURL(r, r.URL.EscapedPath()), nil, sig) {
		return ErrInvalid
	}
	return nil
}

// WebSocketURL returns the URL Twilio connects to for a WebSocket at path
// (for example "/media-stream"): the public base URL with https replaced by
// wss, or, without one, the scheme and host r was received on.
func (v *Validator) WebSocketURL(r *http.Request, path string) string {
	return v.base(r, true) + path
}

// base returns scheme://host of the URL Twilio called, with a WebSocket
// scheme when ws is set.
func (v *Validator) base(r *http.Request, ws bool) string {
	scheme, host := "", ""
	if v.publicURL != "" {
		var ok bool
		scheme, host, ok = strings.Cut(v.publicURL, "://")
		if !ok {
			scheme, host = "https", v.publicURL
		}
	} else {
		scheme, host = requestScheme(r), r.Host
	}
	if ws {
		scheme = webSocketScheme(scheme)
	}
	return scheme + "://" + host
}

// requestScheme is the scheme the client used: the first X-Forwarded-Proto
// value when a proxy set one, otherwise what the connection tells.
func requestScheme(r *http.Request) string {
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		p, _, _ = strings.Cut(p, ",")
		return strings.ToLower(strings.TrimSpace(p))
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// webSocketScheme maps http to ws and https to wss; anything else is
// returned unchanged.
func webSocketScheme(scheme string) string {
	switch scheme {
	case "https":
		return "wss"
	case "http":
		return "ws"
	}
	return scheme
}

// Sign computes the X-Twilio-Signature Twilio would send for a request to
// rawURL with the POST parameters params (nil for a GET or a WebSocket
// upgrade): base64(HMAC-SHA1(authToken, rawURL + each name and its first
// value, sorted by name)). It is for simulators and tests that play Twilio.
func Sign(authToken, rawURL string, params url.Values) string {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(rawURL))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		mac.Write([]byte(k))
		mac.Write([]byte(params.Get(k)))
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
