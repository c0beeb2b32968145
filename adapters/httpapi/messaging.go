package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/twilio/twilio-go/twiml"

	"github.com/convgateway/gateway/ports"
)

// handleWebhook answers Twilio's messaging webhook (WhatsApp and SMS).
// Unsigned or wrongly signed requests get 403 and nothing else happens; a
// form that is not a message (no From or MessageSid, a bad NumMedia) gets
// 400. The reply is TwiML: one <Message> per text, or an empty <Response/>
// when the answer comes later or the delivery was a duplicate.
//
// An error from the use case other than ErrInvalidInput is logged with the
// MessageSid and still answered 200 with whatever reply came back: Twilio
// does not retry a messaging webhook on an error status by default (it only
// logs error 11200), and the use case has already told the user politely.
func handleWebhook(messages ports.Messages, v Verifier) echo.HandlerFunc {
	return func(c echo.Context) error {
		form, err := signedForm(c, v)
		if err != nil {
			return err
		}
		msg, err := inboundMessage(c.Request(), form)
		if err != nil {
			return err
		}
		c.Set(keyMessageSid, msg.MessageSid)

		reply, err := messages.Handle(c.Request().Context(), msg)
		if errors.Is(err, ports.ErrInvalidInput) {
			return err
		}
		if err != nil {
			logFrom(c).Error("httpapi: handle message", "message_sid", msg.MessageSid, "err", err)
		}
		verbs := make([]twiml.Element, 0, len(reply.Messages))
		for _, text := range reply.Messages {
			verbs = append(verbs, twiml.MessagingMessage{Body: text})
		}
		doc, err := twiml.Messages(verbs)
		if err != nil {
			return fmt.Errorf("httpapi: messaging twiml: %w", err)
		}
		return c.Blob(http.StatusOK, echo.MIMETextXMLCharsetUTF8, []byte(doc))
	}
}

// inboundMessage reads the fields the use case needs from Twilio's form.
func inboundMessage(r *http.Request, form url.Values) (ports.InboundMessage, error) {
	get := form.Get
	msg := ports.InboundMessage{
		MessageSid:     get("MessageSid"),
		IdempotencyKey: r.Header.Get("I-Twilio-Idempotency-Token"),
		AccountSid:     get("AccountSid"),
		From:           get("From"),
		To:             get("To"),
		Body:           get("Body"),
		ProfileName:    get("ProfileName"),
		WaID:           get("WaId"),
	}
	if msg.MessageSid == "" || msg.From == "" {
		return msg, echo.NewHTTPError(http.StatusBadRequest, "missing MessageSid or From")
	}
	if s := get("NumMedia"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return msg, echo.NewHTTPError(http.StatusBadRequest, "malformed NumMedia")
		}
		msg.NumMedia = n
	}
	return msg, nil
}
