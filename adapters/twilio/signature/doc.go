// Package signature checks the X-Twilio-Signature that Twilio puts on its
// webhooks and on the WebSocket upgrade of a Media Stream (layer 2 of the
// gateway's security).
//
// Twilio signs the URL it called, so the URL is rebuilt from the configured
// public base URL (PUBLIC_URL) rather than from the request, which behind a
// tunnel or proxy carries the wrong host and scheme. Without a public URL the
// request's Host header and X-Forwarded-Proto are used instead.
//
// The HMAC itself is checked by twilio-go's client.RequestValidator, which
// accepts the URL with and without its default port. A request signed under
// a Twilio Webhooks Rule carries X-Twilio-Webhooks-Signature-Settings and is
// signed with the rule's shared key, HMAC-SHA1 or HMAC-SHA256; twilio-go
// checks only SHA-1 with the auth token, so that case follows Twilio's Node
// library (validateRequest), whose results the tests replay.
package signature
