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
