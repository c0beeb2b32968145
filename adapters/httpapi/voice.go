package httpapi

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/twilio/twilio-go/twiml"

	"github.com/convgateway/gateway/ports"
)

// apology is what a caller hears when the call cannot be answered: a short
// spoken sentence is better than Twilio's generic application error or
// dead air. It is sent with 200 because Twilio ignores the body of an error
// status.
var apology = []twiml.Element{
	twiml.VoiceSay{Message: "Sorry, we cannot take your call right now. Please try again later."},
	twiml.VoiceHangup{},
}

// afterStream is what Twilio plays when the gateway closes the media
// stream while the caller is still on the line (the assistant failed, its
// session hit the 60-minute limit, or the gateway is stopping): Twilio
// moves on to the verb after <Connect>, so the caller hears why the call
// ends instead of silence. A caller who hung up hears nothing.
var afterStream = []twiml.Element{
	twiml.VoiceSay{Message: "Sorry, the assistant can't continue this call. Please call again later. Goodbye."},
	twiml.VoiceHangup{},
}

// handleIncomingCall answers Twilio's voice webhook. Unsigned or wrongly
// signed requests get 403 and start nothing. Otherwise the use case decides:
// <Reject/>, or <Connect><Stream> to the media-stream WebSocket with the
// stream token as a <Parameter> (Twilio drops query strings from stream
// URLs), followed by a spoken apology for when the gateway ends the stream
// before the caller hangs up. If the use case fails the caller hears an
// apology and the error is logged. The token is never logged.
func handleIncomingCall(calls ports.Calls, v Verifier) echo.HandlerFunc {
	return func(c echo.Context) error {
		form, err := signedForm(c, v)
		if err != nil {
			return err
		}
		call := ports.IncomingCall{
			CallID:     form.Get("CallSid"),
			AccountSid: form.Get("AccountSid"),
			From:       form.Get("From"),
			To:         form.Get("To"),
		}
		if call.CallID == "" {
			return echo.NewHTTPError(http.StatusBadRequest, "missing CallSid")
		}
		c.Set(keyCallSid, call.CallID)

		answer, err := calls.Answer(c.Request().Context(), call)
		switch {
		case err != nil:
			logFrom(c).Error("httpapi: answer call", "call_sid", call.CallID, "err", err)
			return voiceTwiML(c, apology...)
		case answer.Reject:
			return voiceTwiML(c, twiml.VoiceReject{})
		}
		connect := twiml.VoiceConnect{InnerElements: []twiml.Element{
			twiml.VoiceStream{
				Url: v.WebSocketURL(c.Request(), pathMediaStream),
				InnerElements: []twiml.Element{
					twiml.VoiceParameter{Name: "token", Value: answer.Token},
					// The numbers of the call, for the call's start event
					// (call control transfers with the number called).
					twiml.VoiceParameter{Name: "from", Value: call.From},
					twiml.VoiceParameter{Name: "to", Value: call.To},
				},
			},
		}}
		return voiceTwiML(c, append([]twiml.Element{connect}, afterStream...)...)
	}
}

// handleMediaStream accepts Twilio's Media Stream WebSocket and serves the
// call until it ends. The upgrade's signature is checked: a wrong one gets
// 403, and so does a missing one unless allowUnsigned is set (Twilio signs
// every upgrade); the stream token in the start event is the use case's
// check. accept makes the channel; the call runs under the server's call
// tracking, not the request's lifetime, so Shutdown can drain it.
func handleMediaStream(calls ports.Calls, v Verifier, accept AcceptStream, allowUnsigned bool, live *liveCalls) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := signedUpgrade(c, v, allowUnsigned); err != nil {
			return err
		}
		r := c.Request()
		ctx, end, ok := live.begin(r.Context())
		if !ok {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "shutting down")
		}
		defer end()

		ch, err := accept(c.Response(), r, logFrom(c))
		if err != nil {
			logFrom(c).Warn("httpapi: accept media stream", "err", err)
			return nil // accept has answered the request
		}
		// Serve closes the channel and logs its own failures; closing it
		// again only guarantees its release.
		defer func() { _ = ch.End(ports.EndCompleted) }()
		_ = calls.Serve(ctx, ch)
		return nil
	}
}

// voiceTwiML answers a voice webhook with a TwiML <Response> of verbs.
func voiceTwiML(c echo.Context, verbs ...twiml.Element) error {
	doc, err := twiml.Voice(verbs)
	if err != nil {
		return fmt.Errorf("httpapi: voice twiml: %w", err)
	}
	return c.Blob(http.StatusOK, echo.MIMETextXMLCharsetUTF8, []byte(doc))
}
