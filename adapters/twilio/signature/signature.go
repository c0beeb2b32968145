package signature

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
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

// SettingsHeader is the header Twilio adds when a Webhooks Rule signs the
// request with a shared key instead of the auth token:
// "key=<shared key id>,algorithm=<algorithm>".
const SettingsHeader = "X-Twilio-Webhooks-Signature-Settings"

// The algorithms SettingsHeader may name. A header without one means
// AlgorithmSHA1.
const (
	AlgorithmSHA1   = "HMAC_SHA1"
	AlgorithmSHA256 = "HMAC_SHA256"
)

var (
	// ErrMissing: the request carries no X-Twilio-Signature.
	ErrMissing = errors.New("signature: missing X-Twilio-Signature")
	// ErrInvalid: the signature does not match the URL and parameters.
	ErrInvalid = errors.New("signature: invalid X-Twilio-Signature")
	// ErrNoSharedKey wraps ErrInvalid: the request is signed with a
	// Webhooks Rule's shared key (it carries SettingsHeader) and the
	// Validator has none.
	ErrNoSharedKey = fmt.Errorf("%w: signed with a Webhooks shared key (%s), and no shared key is configured (TWILIO_WEBHOOK_SHARED_KEY)", ErrInvalid, SettingsHeader)
	// ErrAlgorithm wraps ErrInvalid: SettingsHeader names an algorithm
	// other than AlgorithmSHA1 and AlgorithmSHA256.
	ErrAlgorithm = fmt.Errorf("%w: unsupported algorithm in %s", ErrInvalid, SettingsHeader)
)

// Validator checks Twilio request signatures against one account's auth
// token and, when it has one, a Webhooks Rule's shared key. It never logs
// them and never puts them into an error.
//
// A Validator is immutable and safe for concurrent use.
type Validator struct {
	rv        client.RequestValidator
	sharedKey []byte // nil: requests signed with a shared key are refused
	publicURL string // without a trailing slash; empty: use the request's host
}

// Option configures a Validator.
type Option func(*Validator)

// WithSharedKey makes the Validator accept requests signed under a Twilio
// Webhooks Rule with the shared key secret (those carrying SettingsHeader),
// with the algorithm the header names. An empty secret changes nothing.
func WithSharedKey(secret string) Option {
	return func(v *Validator) {
		if secret != "" {
			v.sharedKey = []byte(secret)
		}
	}
}

// New returns a Validator for authToken. publicURL is the https base URL
// Twilio calls (for example "https://gw.example.com"); when it is empty the
// request's Host header and X-Forwarded-Proto are trusted instead, which is
// only right when nothing rewrites them (the caller should warn at start).
func New(authToken, publicURL string, opts ...Option) *Validator {
	v := &Validator{
		rv:        client.NewRequestValidator(authToken),
		publicURL: strings.TrimRight(publicURL, "/"),
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

// Signed reports whether r carries an X-Twilio-Signature at all (right or
// wrong), so that an unsigned request can be refused before its body is
// read, or, where unsigned requests are tolerated, told apart from a wrongly
// signed one.
func (v *Validator) Signed(r *http.Request) bool { return r.Header.Get(Header) != "" }

// ValidateForm checks the signature of a webhook. form holds the POST
// parameters (r.PostForm) and body the raw request body; the URL is the
// public base URL plus the request's path and query string. The public
// base URL is scheme and host only: a path prefix stripped by a proxy is
// not restored.
//
// A URL whose query carries bodySHA256 (Twilio's JSON webhooks) is signed
// without parameters, and body must hash to it; otherwise the signature
// covers the URL and form. With the auth token only the first value of each
// parameter counts, as in twilio-go; with a shared key every distinct
// value does, sorted, as in Twilio's Node library (twilio-node's
// validateRequest, the reference for shared keys). It returns ErrMissing,
// or an error wrapping ErrInvalid (ErrNoSharedKey and ErrAlgorithm among
// them).
func (v *Validator) ValidateForm(r *http.Request, form url.Values, body []byte) error {
	rawURL := v.base(r, false) + r.URL.RequestURI()
	want := r.URL.Query().Get("bodySHA256")
	if want == "" {
		return v.check(r, rawURL, form)
	}
	if err := v.check(r, rawURL, nil); err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if !hmac.Equal([]byte(hex.EncodeToString(sum[:])), []byte(want)) {
		return fmt.Errorf("%w: the body does not match bodySHA256", ErrInvalid)
	}
	return nil
}

// ValidateUpgrade checks the signature of a WebSocket upgrade request, which
// Twilio signs over the wss URL (the public base URL with https replaced by
// wss, plus the path) with no parameters, with the auth token or a shared
// key as ValidateForm. It returns ErrMissing or an error wrapping
// ErrInvalid; the caller decides whether a missing signature is acceptable.
func (v *Validator) ValidateUpgrade(r *http.Request) error {
	return v.check(r, v.WebSocketURL(r, r.URL.EscapedPath()), nil)
}

// check validates r's signature over rawURL and params: with the auth
// token and HMAC-SHA1, or, when r carries SettingsHeader, with the shared
// key and the algorithm the header names.
func (v *Validator) check(r *http.Request, rawURL string, params url.Values) error {
	sig := r.Header.Get(Header)
	if sig == "" {
		return ErrMissing
	}
	settings := r.Header.Get(SettingsHeader)
	if settings == "" {
		first := make(map[string]string, len(params))
		for k, vs := range params {
			if len(vs) > 0 {
				first[k] = vs[0] // twilio-go signs one value per name
			}
		}
		if !v.rv.Validate(rawURL, first, sig) {
			return ErrInvalid
		}
		return nil
	}
	if v.sharedKey == nil {
		return ErrNoSharedKey
	}
	alg := algorithmOf(settings)
	newHash := hashOf(alg)
	if newHash == nil {
		return fmt.Errorf("%w: %q", ErrAlgorithm, cut(alg, 32))
	}
	for _, u := range portVariants(rawURL) {
		if hmac.Equal([]byte(sig), []byte(sign(newHash, v.sharedKey, u, params))) {
			return nil
		}
	}
	return ErrInvalid
}

// algorithmOf returns the algorithm a SettingsHeader value names
// ("key=…,algorithm=HMAC_SHA256"), or AlgorithmSHA1 when it names none,
// as twilio-node's getSignatureAlgorithm.
func algorithmOf(settings string) string {
	for part := range strings.SplitSeq(settings, ",") {
		name, value, ok := strings.Cut(part, "=")
		if ok && strings.TrimSpace(name) == "algorithm" {
			if value = strings.TrimSpace(value); value != "" {
				return value
			}
		}
	}
	return AlgorithmSHA1
}

// hashOf returns the hash of an algorithm name (in any case), or nil when
// it is not supported.
func hashOf(algorithm string) func() hash.Hash {
	switch strings.ToUpper(algorithm) {
	case AlgorithmSHA1:
		return sha1.New
	case AlgorithmSHA256:
		return sha256.New
	}
	return nil
}

// portVariants returns the forms of rawURL Twilio may have signed: without
// its port, and as it is or, when it has no port, with its scheme's default
// port (twilio-go and twilio-node try the same). The URL is cut as text,
// not parsed, so that the rest of it keeps the characters Twilio signed.
func portVariants(rawURL string) []string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return []string{rawURL}
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host, tail := rest[:end], rest[end:]
	hostPort := host[strings.LastIndexByte(host, '@')+1:] // after any user info
	if i := strings.LastIndexByte(hostPort, ':'); i > strings.LastIndexByte(hostPort, ']') {
		return []string{scheme + "://" + host[:len(host)-len(hostPort)+i] + tail, rawURL}
	}
	port := ":80"
	if scheme == "https" || scheme == "wss" {
		port = ":443"
	}
	return []string{rawURL, scheme + "://" + host + port + tail}
}

// cut returns s cut to at most n bytes, for quoting a header in an error.
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
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

// SignWithKey computes the X-Twilio-Signature Twilio sends under a
// Webhooks Rule: base64(HMAC(sharedKey, rawURL + each name and each of its
// distinct values, names and values sorted)) with the algorithm
// SettingsHeader names (AlgorithmSHA1 or AlgorithmSHA256; ErrAlgorithm for
// another). It is for simulators and tests that play Twilio.
func SignWithKey(algorithm, sharedKey, rawURL string, params url.Values) (string, error) {
	newHash := hashOf(algorithm)
	if newHash == nil {
		return "", fmt.Errorf("%w: %q", ErrAlgorithm, cut(algorithm, 32))
	}
	return sign(newHash, []byte(sharedKey), rawURL, params), nil
}

// sign is the HMAC of twilio-node's getExpectedTwilioSignature: the URL,
// then for each name in sorted order the name and one of its values, for
// each distinct value in sorted order. (Node sorts by UTF-16 code units,
// Go by bytes: they agree on the ASCII names and values Twilio sends.)
func sign(newHash func() hash.Hash, key []byte, rawURL string, params url.Values) string {
	mac := hmac.New(newHash, key)
	mac.Write([]byte(rawURL))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		for _, v := range slices.Compact(slices.Sorted(slices.Values(params[k]))) {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
