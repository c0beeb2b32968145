package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Paths Twilio is configured with; they are the seeds' paths, so a
// deployment of the seeds can switch to the gateway without touching Twilio.
const (
	pathIncomingCall = "/incoming-call"
	pathMediaStream  = "/media-stream"
	pathWebhook      = "/webhook"
)

// addRoutes lists every route the server answers.
func addRoutes(e *echo.Echo, d Deps, live *liveCalls) {
	e.GET("/health", handleHealth())
	e.GET("/ready", handleReady(d.Checks, d.ReadyTimeout))
	// Twilio calls the voice webhook with POST by default, GET when so
	// configured (the seed accepted both).
	e.Match([]string{http.MethodGet, http.MethodPost}, pathIncomingCall, handleIncomingCall(d.Calls, d.Verifier))
	e.GET(pathMediaStream, handleMediaStream(d.Calls, d.Verifier, d.AcceptStream, d.AllowUnsignedStreams, live))
	e.POST(pathWebhook, handleWebhook(d.Messages, d.Verifier))
	if d.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(d.Metrics))
	}
}
