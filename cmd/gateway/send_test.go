package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/test/sim/twiliorest"
)

func twilioEnv(sim *twiliorest.Server, kv ...string) map[string]string {
	env := map[string]string{
		"TWILIO_ACCOUNT_SID":  sim.AccountSID(),
		"TWILIO_AUTH_TOKEN":   sim.AuthToken(),
		"TWILIO_API_BASE_URL": sim.URL(),
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

func TestSendTemplateAndBody(t *testing.T) {
	t.Chdir(t.TempDir())
	sim := twiliorest.New(twiliorest.Options{})
	defer sim.Close()

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want twiliorest.Message
	}{
		{
			name: "template with the default sender",
			env:  twilioEnv(sim, "TWILIO_FROM", "whatsapp:+14155238886"),
			args: []string{"--to", "whatsapp:+15551234567", "--content-sid", "HX123", "--vars", `{"1":"Ana"}`},
			want: twiliorest.Message{To: "whatsapp:+15551234567", From: "whatsapp:+14155238886", ContentSID: "HX123", ContentVariables: `{"1":"Ana"}`},
		},
		{
			name: "body with --from",
			env:  twilioEnv(sim),
			args: []string{"--to", "+15551234567", "--from", "+15557654321", "--body", "Hello"},
			want: twiliorest.Message{To: "+15551234567", From: "+15557654321", Body: "Hello"},
		},
		{
			name: "messaging service as the default sender",
			env:  twilioEnv(sim, "TWILIO_FROM", "MG0123"),
			args: []string{"--to", "+15551234567", "--body", "Hi"},
			want: twiliorest.Message{To: "+15551234567", MessagingServiceSID: "MG0123", Body: "Hi"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(sim.Messages())
			var out strings.Builder
			err := run(context.Background(), append([]string{"gateway", "send"}, tt.args...), getenv(tt.env), &out)
			require.NoError(t, err)
			msgs := sim.Messages()
			require.Len(t, msgs, before+1)
			got := msgs[before]
			assert.Equal(t, got.SID+"\n", out.String(), "prints the message SID")
			got.SID = ""
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSendReportsTwilioRefusal(t *testing.T) {
	t.Chdir(t.TempDir())
	sim := twiliorest.New(twiliorest.Options{})
	defer sim.Close()
	sim.FailNext(twiliorest.Failure{Status: 400, Code: 63016})
	var out strings.Builder
	err := run(context.Background(), []string{"gateway", "send", "--to", "whatsapp:+15551234567", "--from", "whatsapp:+14155238886", "--body", "late"},
		getenv(twilioEnv(sim)), &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "63016")
	assert.NotContains(t, err.Error(), sim.AuthToken())
	assert.Empty(t, out.String())
}

func TestSendNeedsTwilioSettings(t *testing.T) {
	t.Chdir(t.TempDir())
	err := run(context.Background(), []string{"gateway", "send", "--to", "+15551234567", "--body", "x"}, getenv(nil), &strings.Builder{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TWILIO_AUTH_TOKEN is required")
	assert.Contains(t, err.Error(), "TWILIO_ACCOUNT_SID is required")
	assert.NotContains(t, err.Error(), "OPENAI_API_KEY", "sending does not need OpenAI")
}

func TestOutboundFlags(t *testing.T) {
	tests := []struct {
		name                          string
		to, from, body, content, vars string
		defaultFrom                   string
		wantErr                       []string
	}{
		{name: "ok body", to: "+1555", body: "hi", defaultFrom: "+1444"},
		{name: "ok template", to: "+1555", from: "+1444", content: "HX1", vars: `{"1":"Ana"}`},
		{name: "nothing", wantErr: []string{"--to is required", "--from or TWILIO_FROM is required", "exactly one of --body and --content-sid"}},
		{name: "both", to: "+1555", from: "+1444", body: "hi", content: "HX1", wantErr: []string{"exactly one of --body and --content-sid"}},
		{name: "vars without template", to: "+1555", from: "+1444", body: "hi", vars: `{"1":"x"}`, wantErr: []string{"--vars needs --content-sid"}},
		{name: "vars not an object of strings", to: "+1555", from: "+1444", content: "HX1", vars: `{"1":2}`, wantErr: []string{"--vars must be a JSON object of strings"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := outbound(tt.to, tt.from, tt.body, tt.content, tt.vars, tt.defaultFrom)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.to, msg.To)
				assert.Equal(t, tt.from, msg.From)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
