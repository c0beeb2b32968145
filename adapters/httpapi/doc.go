// Package httpapi is the gateway's HTTP adapter and the only package that
// imports echo. It serves Twilio's webhooks and Media Stream upgrades and
// drives the use cases behind ports.Calls and ports.Messages:
//
//	GET  /health          liveness: 200 {"status":"ok"}
//	GET  /ready           readiness: 200 when every check pings, else 503
//	POST /incoming-call   voice webhook (signed): TwiML <Connect><Stream> or <Reject/>
//	GET  /media-stream    Twilio Media Stream WebSocket (signed)
//	POST /webhook         WhatsApp/SMS webhook (signed): TwiML <Message>s
//
// It serves what it is given and builds no other adapter: app/wire passes
// the use cases, a Verifier of Twilio's signatures and an AcceptStream that
// turns a media-stream upgrade into a ports.TelephonyChannel (Deps).
//
// The generic server is server.go (the http.Server, Serve, Shutdown),
// middleware.go (request id, request log, panics, body limit), health.go,
// errors.go and calls.go (the live calls Shutdown drains); the Twilio
// handling is twilio.go (what the server needs from the Twilio adapters,
// signature checks), voice.go (the voice webhook's TwiML, the media stream)
// and messaging.go (the messaging webhook).
//
// routes.go lists every route. Errors are mapped to status codes in one
// place (errors.go); only internal failures are logged as errors and no
// internal text or stack trace reaches a client. What a client controls is
// bounded: a request must arrive whole within Deps.ReadTimeout, its body
// within Deps.BodyLimit, and its X-Request-Id is adopted only when it is a
// short token.
//
// echo's Shutdown does not wait for hijacked connections, so the Server
// tracks live calls itself: Shutdown stops accepting, lets in-flight webhooks
// finish, gives live calls until the drain deadline and then cancels them.
package httpapi
