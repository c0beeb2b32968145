package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/convgateway/gateway/app/wire"
	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
)

// sendTimeout bounds one send, from the request to Twilio's answer.
const sendTimeout = 30 * time.Second

// send sends one message (--body, inside WhatsApp's 24-hour window) or one
// approved template (--content-sid with --vars) through the Twilio Messages
// API and prints its SID. It needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN
// only.
func send(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs, configFile := flags("send", stdout)
	to := fs.String("to", "", `recipient: "whatsapp:+15551234567" or "+15551234567" (SMS)`)
	from := fs.String("from", "", `sender: "whatsapp:+1...", "+1..." (default TWILIO_FROM, which may also be a Messaging Service "MG...")`)
	body := fs.String("body", "", "message text (WhatsApp: only inside the 24-hour window)")
	contentSID := fs.String("content-sid", "", "approved template to send (HX...)")
	vars := fs.String("vars", "", `template variables as a JSON object, e.g. '{"1":"Ana"}'`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("send: unexpected arguments %q", fs.Args())
	}

	cfg, err := configs.Load(configs.LoadOptions{ConfigFile: *configFile, Getenv: getenv, Purpose: configs.PurposeSend})
	if err != nil {
		return err
	}
	msg, err := outbound(*to, *from, *body, *contentSID, *vars, cfg.TwilioFrom)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	sid, err := wire.NewSender(cfg, &http.Client{}).Send(ctx, msg)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	fmt.Fprintln(stdout, sid)
	return nil
}

// outbound checks the send flags and builds the message. An empty from
// leaves the choice to the sender, which uses TWILIO_FROM (defaultFrom).
func outbound(to, from, body, contentSID, vars, defaultFrom string) (ports.OutboundMessage, error) {
	var problems []error
	if to == "" {
		problems = append(problems, errors.New("--to is required"))
	}
	if from == "" && defaultFrom == "" {
		problems = append(problems, errors.New("--from or TWILIO_FROM is required"))
	}
	if (body == "") == (contentSID == "") {
		problems = append(problems, errors.New("give exactly one of --body and --content-sid"))
	}
	if vars != "" && contentSID == "" {
		problems = append(problems, errors.New("--vars needs --content-sid"))
	}
	msg := ports.OutboundMessage{To: to, From: from, Body: body, ContentSID: contentSID}
	if vars != "" {
		if err := json.Unmarshal([]byte(vars), &msg.ContentVariables); err != nil {
			problems = append(problems, fmt.Errorf(`--vars must be a JSON object of strings such as '{"1":"Ana"}': %w`, err))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return ports.OutboundMessage{}, fmt.Errorf("send: %w", err)
	}
	return msg, nil
}
