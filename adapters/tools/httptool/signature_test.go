package httptool_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/tools/httptool"
)

// verifyGatewaySignature is what a tool's server runs on each request; the
// README shows it to tool authors (TestReadmeShowsTheVerification keeps
// the two the same).
//
// verifyGatewaySignature reports whether header, the request's
// X-Gateway-Signature, signs body (the raw request body) under secret
// (TOOLS_SIGNING_SECRET).
func verifyGatewaySignature(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil)) // constant time
}

func TestSignatureVerifies(t *testing.T) {
	secret, body := []byte("0123456789abcdef"), []byte(`{"tool":"x","arguments":{},"channel":"sms","user":"+1"}`)
	sig := httptool.Sign(secret, body)
	assert.True(t, verifyGatewaySignature(secret, body, sig))
	assert.False(t, verifyGatewaySignature([]byte("another secret!!"), body, sig), "another secret")
	assert.False(t, verifyGatewaySignature(secret, append(body, ' '), sig), "another body")
	assert.False(t, verifyGatewaySignature(secret, body, strings.TrimPrefix(sig, "sha256=")), "no prefix")
	assert.False(t, verifyGatewaySignature(secret, body, "sha256=zz"), "not hex")
	assert.False(t, verifyGatewaySignature(secret, body, ""), "no header")
}

// funcSource is the text of the function name in src, from "func name(" to
// its closing brace at the start of a line.
func funcSource(t *testing.T, src, name string) string {
	t.Helper()
	start := strings.Index(src, "func "+name+"(")
	require.GreaterOrEqual(t, start, 0, "func %s not found", name)
	end := strings.Index(src[start:], "\n}")
	require.GreaterOrEqual(t, end, 0)
	return src[start : start+end+2]
}

func TestReadmeShowsTheVerification(t *testing.T) {
	test, err := os.ReadFile("signature_test.go")
	require.NoError(t, err)
	readme, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	want := funcSource(t, string(test), "verifyGatewaySignature")
	assert.Equal(t, want, funcSource(t, string(readme), "verifyGatewaySignature"),
		"README.md's snippet must be the function this test runs")
}
