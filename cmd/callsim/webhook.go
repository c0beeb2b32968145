package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/convgateway/gateway/adapters/twilio/signature"
)

// post POSTs form to o.url+path as Twilio does: form-encoded, signed with
// the auth token over o.publicURL+path (the URL Twilio was configured
// with), with Twilio's user agent and extra headers. It returns the body
// of a 200 answer and how long the answer took; any other status, or no
// answer, is an error saying what to check.
func post(ctx context.Context, client *http.Client, o options, path string, form url.Values, header http.Header) ([]byte, time.Duration, error) {
	target := o.url + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, 0, fmt.Errorf("POST %s: %w", target, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1 (callsim)")
	req.Header.Set(signature.Header, signature.Sign(o.authToken, o.publicURL+path, form))
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return nil, time.Since(start), explain(target, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	took := time.Since(start)
	if err != nil {
		return nil, took, explain(target, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, took, statusError("POST "+target, res, body, o.publicURL+path)
	}
	return body, took, nil
}

// messagingTwiML is the answer to a messaging webhook: <Message>s, or
// nothing.
type messagingTwiML struct {
	XMLName  xml.Name `xml:"Response"`
	Messages []string `xml:"Message"`
}

// message sends one WhatsApp message and prints the reply: the TwiML's
// <Message>s, or word that the answer comes later through the REST API.
func message(ctx context.Context, o options, client *http.Client, stdout io.Writer) error {
	msgSid := o.callSid
	if msgSid == "" {
		msgSid = sid("SM")
	}
	form := url.Values{
		"MessageSid": {msgSid}, "SmsMessageSid": {msgSid}, "AccountSid": {o.account},
		"From": {o.from}, "To": {o.to}, "Body": {o.whatsapp}, "NumMedia": {"0"}, "NumSegments": {"1"},
		"SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"}, "ProfileName": {"callsim"},
		"WaId": {strings.TrimPrefix(o.from, "whatsapp:+")},
	}
	fmt.Fprintf(stdout, "POST %s/webhook (signed for %s/webhook): MessageSid %s, From %s, To %s\n  %q\n",
		o.url, o.publicURL, msgSid, o.from, o.to, o.whatsapp)
	header := http.Header{"I-Twilio-Idempotency-Token": {"callsim-" + msgSid}}
	body, took, err := post(ctx, client, o, "/webhook", form, header)
	if err != nil {
		return err
	}
	var twiml messagingTwiML
	if err := xml.Unmarshal(body, &twiml); err != nil {
		return fmt.Errorf("POST %s/webhook answered 200 with something that is not TwiML (%v): %.300s", o.url, err, body)
	}
	if len(twiml.Messages) == 0 {
		fmt.Fprintf(stdout, "200 after %s: an empty <Response/>: the answer was not ready in time (REPLY_INLINE_TIMEOUT), or this MessageSid was seen before.\n"+
			"The gateway sends the answer later through the Twilio Messages REST API, from %s to %s:\n"+
			"look for it on the phone or in the Twilio Console's message logs (not here).\n", dur(took), o.to, o.from)
		return nil
	}
	fmt.Fprintf(stdout, "200 after %s, the reply inline (%d <Message>):\n", dur(took), len(twiml.Messages))
	for _, m := range twiml.Messages {
		fmt.Fprintf(stdout, "  %q\n", m)
	}
	return nil
}

// dur formats a duration for reports: "3 ms", "1.520 s".
func dur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}
