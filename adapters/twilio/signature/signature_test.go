package signature_test

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/twilio/signature"
)

const token = "test-auth-token-0123456789abcdef"

type vector struct {
	AuthToken string            `json:"auth_token"`
	URL       string            `json:"url"`
	Params    map[string]string `json:"params"`
	Signature string            `json:"signature"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/twilio-signature-vectors.json")
	require.NoError(t, err)
	var f struct{ Vectors []vector }
	require.NoError(t, json.Unmarshal(b, &f))
	require.NotEmpty(t, f.Vectors)
	return f.Vectors
}

func values(m map[string]string) url.Values {
	v := url.Values{}
	for k, s := range m {
		v.Set(k, s)
	}
	return v
}

// formRequest builds a POST as received by the gateway at target (the
// gateway's own address, not the public one), signed with sig.
func formRequest(target string, form url.Values, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		r.Header.Set(signature.Header, sig)
	}
	return r
}

func TestSignMatchesTwilioVectors(t *testing.T) {
	for _, vec := range loadVectors(t) {
		t.Run(vec.URL, func(t *testing.T) {
			assert.Equal(t, vec.Signature, signature.Sign(vec.AuthToken, vec.URL, values(vec.Params)))
		})
	}
}

func TestValidateFormTwilioVector(t *testing.T) {
	vec := loadVectors(t)[0]
	u, err := url.Parse(vec.URL)
	require.NoError(t, err)
	v := signature.New(vec.AuthToken, u.Scheme+"://"+u.Host)
	form := values(vec.Params)

	// The gateway listens elsewhere (behind a tunnel): only the path and
	// query string of the request count.
	r := formRequest("http://127.0.0.1:5050"+u.RequestURI(), form, vec.Signature)
	require.NoError(t, v.ValidateForm(r, form, []byte(form.Encode())))

	tampered := values(vec.Params)
	tampered.Set("Digits", "9999")
	r = formRequest("http://127.0.0.1:5050"+u.RequestURI(), tampered, vec.Signature)
	assert.ErrorIs(t, v.ValidateForm(r, tampered, []byte(tampered.Encode())), signature.ErrInvalid)

	r = formRequest("http://127.0.0.1:5050"+u.Path, form, vec.Signature) // query dropped
	assert.ErrorIs(t, v.ValidateForm(r, form, []byte(form.Encode())), signature.ErrInvalid)
}

func TestValidateForm(t *testing.T) {
	form := url.Values{"CallSid": {"CA123"}, "From": {"+15551234567"}, "To": {"+15557654321"}}
	const target = "http://10.0.0.7:5050/incoming-call"

	tests := []struct {
		name      string
		publicURL string
		signedURL string // "" sends no signature
		token     string
		header    func(r *http.Request)
		want      error
	}{
		{name: "public url", publicURL: "https://gw.example.com", signedURL: "https://gw.example.com/incoming-call"},
		{name: "public url with trailing slash", publicURL: "https://gw.example.com/", signedURL: "https://gw.example.com/incoming-call"},
		{name: "signed with default port", publicURL: "https://gw.example.com", signedURL: "https://gw.example.com:443/incoming-call"},
		{name: "public url with default port", publicURL: "https://gw.example.com:443", signedURL: "https://gw.example.com/incoming-call"},
		{name: "non-default port must match", publicURL: "https://gw.example.com:8443", signedURL: "https://gw.example.com:8443/incoming-call"},
		{name: "wrong host", publicURL: "https://gw.example.com", signedURL: "https://evil.example.com/incoming-call", want: signature.ErrInvalid},
		{name: "wrong path", publicURL: "https://gw.example.com", signedURL: "https://gw.example.com/webhook", want: signature.ErrInvalid},
		{name: "wrong token", publicURL: "https://gw.example.com", signedURL: "https://gw.example.com/incoming-call", token: "another-token", want: signature.ErrInvalid},
		{name: "missing", publicURL: "https://gw.example.com", want: signature.ErrMissing},
		{
			name: "host fallback with X-Forwarded-Proto", signedURL: "https://gw.example.com/incoming-call",
			header: func(r *http.Request) { r.Host = "gw.example.com"; r.Header.Set("X-Forwarded-Proto", "https") },
		},
		{
			name: "host fallback with a list in X-Forwarded-Proto", signedURL: "https://gw.example.com/incoming-call",
			header: func(r *http.Request) { r.Host = "gw.example.com"; r.Header.Set("X-Forwarded-Proto", "HTTPS, http") },
		},
		{
			name: "host fallback over TLS", signedURL: "https://gw.example.com/incoming-call",
			header: func(r *http.Request) { r.Host = "gw.example.com"; r.TLS = &tls.ConnectionState{} },
		},
		{
			name: "host fallback plain http", signedURL: "http://gw.example.com:5050/incoming-call",
			header: func(r *http.Request) { r.Host = "gw.example.com:5050" },
		},
		{
			name: "host fallback without proto header assumes http", signedURL: "https://gw.example.com/incoming-call",
			header: func(r *http.Request) { r.Host = "gw.example.com" }, want: signature.ErrInvalid,
		},
		{
			name: "forwarded proto ignored when public url set", publicURL: "https://gw.example.com", signedURL: "https://gw.example.com/incoming-call",
			header: func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "http"); r.Host = "other.example.com" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := ""
			if tt.signedURL != "" {
				tok := token
				if tt.token != "" {
					tok = tt.token
				}
				sig = signature.Sign(tok, tt.signedURL, form)
			}
			r := formRequest(target, form, sig)
			if tt.header != nil {
				tt.header(r)
			}
			err := signature.New(token, tt.publicURL).ValidateForm(r, form, []byte(form.Encode()))
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
			assert.NotContains(t, err.Error(), token)
		})
	}
}

func TestValidateUpgrade(t *testing.T) {
	const target = "http://10.0.0.7:5050/media-stream"
	tests := []struct {
		name      string
		publicURL string
		signedURL string
		header    func(r *http.Request)
		want      error
	}{
		{name: "wss url", publicURL: "https://gw.example.com", signedURL: "wss://gw.example.com/media-stream"},
		{name: "signed over https is not the wss url", publicURL: "https://gw.example.com", signedURL: "https://gw.example.com/media-stream", want: signature.ErrInvalid},
		{name: "plain http public url gives ws", publicURL: "http://localhost:5050", signedURL: "ws://localhost:5050/media-stream"},
		{name: "missing", publicURL: "https://gw.example.com", want: signature.ErrMissing},
		{
			name: "host fallback with X-Forwarded-Proto", signedURL: "wss://gw.example.com/media-stream",
			header: func(r *http.Request) { r.Host = "gw.example.com"; r.Header.Set("X-Forwarded-Proto", "https") },
		},
		{
			name: "host fallback plain", signedURL: "ws://10.0.0.7:5050/media-stream",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, target, nil)
			if tt.signedURL != "" {
				// Twilio sends the header name in lower case.
				r.Header.Set("x-twilio-signature", signature.Sign(token, tt.signedURL, nil))
			}
			if tt.header != nil {
				tt.header(r)
			}
			v := signature.New(token, tt.publicURL)
			err := v.ValidateUpgrade(r)
			assert.Equal(t, tt.signedURL != "", v.Signed(r), "Signed tells whether there is a signature, right or wrong")
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestWebSocketURL(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "http://10.0.0.7:5050/incoming-call", nil)
	assert.Equal(t, "wss://gw.example.com/media-stream", signature.New(token, "https://gw.example.com/").WebSocketURL(r, "/media-stream"))

	r.Host = "abc.trycloudflare.com"
	r.Header.Set("X-Forwarded-Proto", "https")
	assert.Equal(t, "wss://abc.trycloudflare.com/media-stream", signature.New(token, "").WebSocketURL(r, "/media-stream"))
}
