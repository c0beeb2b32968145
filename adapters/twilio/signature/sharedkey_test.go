package signature_test

import (
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

// sharedKeyVectors are the vectors of testdata/twilio-shared-key-vectors.json,
// computed with Twilio's Node library (see the file's $comment).
type sharedKeyVectors struct {
	SharedKey string `json:"shared_key"`
	Library   string `json:"library"`
	Forms     []struct {
		Name           string         `json:"name"`
		SettingsHeader string         `json:"settings_header"`
		Algorithm      string         `json:"algorithm"`
		SignedURL      string         `json:"signed_url"`
		URL            string         `json:"url"`
		Params         map[string]any `json:"params"` // a string, or a list for a repeated parameter
		Signature      string         `json:"signature"`
		Valid          bool           `json:"valid"`
	} `json:"forms"`
	JSONBodies []struct {
		Name           string `json:"name"`
		SettingsHeader string `json:"settings_header"`
		URL            string `json:"url"`
		Body           string `json:"body"`
		Signature      string `json:"signature"`
		Valid          bool   `json:"valid"`
	} `json:"json_bodies"`
}

func loadSharedKeyVectors(t *testing.T) sharedKeyVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/twilio-shared-key-vectors.json")
	require.NoError(t, err)
	var v sharedKeyVectors
	require.NoError(t, json.Unmarshal(b, &v))
	require.NotEmpty(t, v.Forms)
	require.NotEmpty(t, v.JSONBodies)
	return v
}

// formOf turns a vector's parameters into a form, a repeated parameter's
// values in their order.
func formOf(params map[string]any) url.Values {
	form := url.Values{}
	for k, v := range params {
		switch v := v.(type) {
		case string:
			form.Add(k, v)
		case []any:
			for _, s := range v {
				form.Add(k, s.(string))
			}
		}
	}
	return form
}

// vectorRequest builds the request of a vector as the gateway receives it
// behind a tunnel: at its own address, with the vector URL's path and
// query, signed and with the settings header.
func vectorRequest(t *testing.T, rawURL, method string, body, contentType, sig, settings string) *http.Request {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	r := httptest.NewRequest(method, "http://10.0.0.7:5050"+u.RequestURI(), strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r.Header.Set(signature.Header, sig)
	r.Header.Set(signature.SettingsHeader, settings)
	return r
}

// validateVector validates a vector's request with v the way the gateway
// does: the upgrade, or the parsed form with the raw body.
func validateVector(t *testing.T, v *signature.Validator, r *http.Request, body string) error {
	t.Helper()
	if r.Method == http.MethodGet {
		return v.ValidateUpgrade(r)
	}
	require.NoError(t, r.ParseForm())
	return v.ValidateForm(r, r.PostForm, []byte(body))
}

// TestSharedKeyVectors replays Twilio's Node library's verdicts on
// requests signed under a Webhooks Rule: form webhooks, the media-stream
// upgrade, both algorithms, the header's variants, ports, query strings,
// repeated parameters, and signatures that must fail.
func TestSharedKeyVectors(t *testing.T) {
	vecs := loadSharedKeyVectors(t)
	t.Logf("vectors of %s", vecs.Library)
	v := signature.New("the-auth-token-is-not-used-here", "https://gw.example.com", signature.WithSharedKey(vecs.SharedKey))
	for _, vec := range vecs.Forms {
		t.Run(vec.Name, func(t *testing.T) {
			form := formOf(vec.Params)
			method, body, ctype := http.MethodPost, form.Encode(), "application/x-www-form-urlencoded"
			if strings.HasPrefix(vec.URL, "wss://") {
				method, body, ctype = http.MethodGet, "", ""
			}
			r := vectorRequest(t, vec.URL, method, body, ctype, vec.Signature, vec.SettingsHeader)
			err := validateVector(t, v, r, body)
			if vec.Valid {
				require.NoError(t, err)
				got, err := signature.SignWithKey(vec.Algorithm, vecs.SharedKey, vec.SignedURL, form)
				require.NoError(t, err)
				assert.Equal(t, vec.Signature, got, "SignWithKey signs as Twilio's library")
				return
			}
			require.ErrorIs(t, err, signature.ErrInvalid)
			assert.NotContains(t, err.Error(), vecs.SharedKey)
			if vec.Name == "unknown algorithm" {
				assert.ErrorIs(t, err, signature.ErrAlgorithm)
				assert.Contains(t, err.Error(), `"HMAC_MD5"`, "the error names the algorithm")
			}
		})
	}
}

// TestSharedKeyJSONBodyVectors: a JSON webhook is signed over its URL,
// which carries the body's SHA-256; a body changed after signing fails.
func TestSharedKeyJSONBodyVectors(t *testing.T) {
	vecs := loadSharedKeyVectors(t)
	v := signature.New("the-auth-token-is-not-used-here", "https://gw.example.com", signature.WithSharedKey(vecs.SharedKey))
	for _, vec := range vecs.JSONBodies {
		t.Run(vec.Name, func(t *testing.T) {
			r := vectorRequest(t, vec.URL, http.MethodPost, vec.Body, "application/json", vec.Signature, vec.SettingsHeader)
			err := validateVector(t, v, r, vec.Body)
			if vec.Valid {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, signature.ErrInvalid)
		})
	}
}

// TestAuthTokenJSONBodyVector: the same with the auth token (Twilio's
// documented example).
func TestAuthTokenJSONBodyVector(t *testing.T) {
	b, err := os.ReadFile("testdata/twilio-signature-vectors.json")
	require.NoError(t, err)
	var f struct {
		Vectors []struct {
			AuthToken string `json:"auth_token"`
			URL       string `json:"url"`
			Body      string `json:"body"`
			Signature string `json:"signature"`
		}
	}
	require.NoError(t, json.Unmarshal(b, &f))
	vec := f.Vectors[1]
	require.NotEmpty(t, vec.Body)
	v := signature.New(vec.AuthToken, "https://example.com")
	r := vectorRequest(t, vec.URL, http.MethodPost, vec.Body, "application/json", vec.Signature, "")
	require.NoError(t, validateVector(t, v, r, vec.Body))

	changed := strings.Replace(vec.Body, "CA1234567890ABCDE", "CA0000000000000000", 1)
	r = vectorRequest(t, vec.URL, http.MethodPost, changed, "application/json", vec.Signature, "")
	assert.ErrorIs(t, validateVector(t, v, r, changed), signature.ErrInvalid, "the body must match bodySHA256")
}

// TestSharedKeyNotConfigured: a request signed with a shared key is refused
// when the Validator has none, with an error that says why; a request
// signed with the auth token is checked as before, shared key or not.
func TestSharedKeyNotConfigured(t *testing.T) {
	vecs := loadSharedKeyVectors(t)
	vec := vecs.Forms[0]
	form := formOf(vec.Params)
	r := vectorRequest(t, vec.URL, http.MethodPost, form.Encode(), "application/x-www-form-urlencoded", vec.Signature, vec.SettingsHeader)
	err := validateVector(t, signature.New(token, "https://gw.example.com"), r, form.Encode())
	require.ErrorIs(t, err, signature.ErrNoSharedKey)
	require.ErrorIs(t, err, signature.ErrInvalid)
	assert.Contains(t, err.Error(), "TWILIO_WEBHOOK_SHARED_KEY")

	withKey := signature.New(token, "https://gw.example.com", signature.WithSharedKey(vecs.SharedKey))
	signed := signature.Sign(token, vec.URL, form)
	r = vectorRequest(t, vec.URL, http.MethodPost, form.Encode(), "application/x-www-form-urlencoded", signed, "")
	require.NoError(t, validateVector(t, withKey, r, form.Encode()), "the auth token still signs requests without the header")

	r = vectorRequest(t, vec.URL, http.MethodPost, form.Encode(), "application/x-www-form-urlencoded", signed, vec.SettingsHeader)
	assert.ErrorIs(t, validateVector(t, withKey, r, form.Encode()), signature.ErrInvalid,
		"with the header, the auth token's signature is not the shared key's")
}
