package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/adapters/httpapi"
	"github.com/convgateway/gateway/ports"
)

func messageForm(sid, body string) url.Values {
	return url.Values{
		"MessageSid":  {sid},
		"AccountSid":  {"AC0123456789abcdef0123456789abcdef"},
		"From":        {"whatsapp:+15551234567"},
		"To":          {"whatsapp:+15557654321"},
		"Body":        {body},
		"NumMedia":    {"0"},
		"ProfileName": {"Ana"},
		"WaId":        {"15551234567"},
		"SmsStatus":   {"received"},
	}
}

func TestWebhookRepliesInline(t *testing.T) {
	e := newEnv(t)

	doc := readTwiML(t, e.post(t, "/webhook", messageForm("SM1", "hello <there> & you"), true,
		"I-Twilio-Idempotency-Token", "idem-1"))

	assert.Equal(t, []string{fake.EchoPrefix + "hello <there> & you"}, doc.Messages)
	assert.Equal(t, []ports.InboundMessage{{
		MessageSid:     "SM1",
		IdempotencyKey: "idem-1",
		AccountSid:     "AC0123456789abcdef0123456789abcdef",
		From:           "whatsapp:+15551234567",
		To:             "whatsapp:+15557654321",
		Body:           "hello <there> & you",
		ProfileName:    "Ana",
		WaID:           "15551234567",
	}}, e.messages.Received())
	assert.Contains(t, e.logs.String(), `"message_sid":"SM1"`)
}

func TestWebhookSeveralMessagesInOrder(t *testing.T) {
	e := newEnv(t)
	parts := []string{"first part.", "second part.", "third part."}
	e.messages.SetHandle(func(context.Context, ports.InboundMessage) (ports.Reply, error) {
		return ports.Reply{Messages: parts}, nil
	})

	doc := readTwiML(t, e.post(t, "/webhook", messageForm("SM1", "long question"), true))

	assert.Equal(t, parts, doc.Messages)
}

func TestWebhookEmptyReplyAndDuplicate(t *testing.T) {
	e := newEnv(t)
	// Answers the first delivery of a MessageSid inline and later ones
	// (Twilio's retries) with nothing, as the use case does.
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	e.messages.SetHandle(func(_ context.Context, m ports.InboundMessage) (ports.Reply, error) {
		mu.Lock()
		defer mu.Unlock()
		if seen[m.MessageSid] {
			return ports.Reply{}, nil
		}
		seen[m.MessageSid] = true
		return ports.Reply{Messages: []string{"answer"}}, nil
	})

	first := readTwiML(t, e.post(t, "/webhook", messageForm("SM1", "hi"), true))
	retry := readTwiML(t, e.post(t, "/webhook", messageForm("SM1", "hi"), true))

	assert.Equal(t, []string{"answer"}, first.Messages)
	assert.Empty(t, retry.Messages, "a duplicate gets an empty <Response/> and 200")
	assert.Len(t, e.messages.Received(), 2)
}

func TestWebhookNumMedia(t *testing.T) {
	e := newEnv(t)
	form := messageForm("SM1", "")
	form.Set("NumMedia", "2")
	form.Set("MediaUrl0", "https://api.twilio.com/media/0")

	readTwiML(t, e.post(t, "/webhook", form, true))

	require.Len(t, e.messages.Received(), 1)
	assert.Equal(t, 2, e.messages.Received()[0].NumMedia)
}

func TestWebhookRejectsBadForms(t *testing.T) {
	tests := []struct {
		name string
		edit func(url.Values)
	}{
		{name: "no From", edit: func(f url.Values) { f.Del("From") }},
		{name: "no MessageSid", edit: func(f url.Values) { f.Del("MessageSid") }},
		{name: "NumMedia not a number", edit: func(f url.Values) { f.Set("NumMedia", "two") }},
		{name: "NumMedia negative", edit: func(f url.Values) { f.Set("NumMedia", "-1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			form := messageForm("SM1", "hi")
			tt.edit(form)
			resp := e.post(t, "/webhook", form, true)
			readBody(t, resp)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Empty(t, e.messages.Received())
		})
	}
}

func TestWebhookMalformedBody(t *testing.T) {
	e := newEnv(t)
	resp := e.postSig(t, "/webhook", "From=%zz&MessageSid=SM1", "c2lnbmVk")
	readBody(t, resp)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Empty(t, e.messages.Received())
}

func TestWebhookRefusesBadSignatures(t *testing.T) {
	form := messageForm("SM1", "hi")
	for name, sig := range map[string]string{"missing": "", "invalid": "bm90IGEgc2lnbmF0dXJl"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			resp := e.postSig(t, "/webhook", form.Encode(), sig)
			body := readBody(t, resp)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.NotContains(t, body, "<Response")
			assert.Empty(t, e.messages.Received(), "nothing else happens")
		})
	}
}

func TestWebhookUseCaseErrors(t *testing.T) {
	t.Run("invalid input is 400", func(t *testing.T) {
		e := newEnv(t)
		e.messages.SetHandle(func(context.Context, ports.InboundMessage) (ports.Reply, error) {
			return ports.Reply{}, fmt.Errorf("messages: no sender: %w", ports.ErrInvalidInput)
		})
		resp := e.post(t, "/webhook", messageForm("SM1", "hi"), true)
		body := readBody(t, resp)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.NotContains(t, body, "no sender", "no internal text in the response")
	})
	t.Run("other failures answer 200 with the polite reply and are logged", func(t *testing.T) {
		e := newEnv(t)
		e.messages.SetHandle(func(context.Context, ports.InboundMessage) (ports.Reply, error) {
			return ports.Reply{Messages: []string{"Sorry, something went wrong."}},
				fmt.Errorf("messages: mark seen: %w", ports.ErrUnavailable)
		})
		doc := readTwiML(t, e.post(t, "/webhook", messageForm("SM7", "hi"), true))
		assert.Equal(t, []string{"Sorry, something went wrong."}, doc.Messages)
		logs := e.logs.String()
		assert.Contains(t, logs, "mark seen")
		assert.Contains(t, logs, `"message_sid":"SM7"`)
	})
}

func TestPanicIsA500WithoutStack(t *testing.T) {
	e := newEnv(t)
	e.messages.SetHandle(func(context.Context, ports.InboundMessage) (ports.Reply, error) {
		panic(errors.New("boom: secret internals"))
	})

	resp := e.post(t, "/webhook", messageForm("SM1", "hi"), true)
	body := readBody(t, resp)

	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.NotContains(t, body, "boom")
	assert.NotContains(t, body, "goroutine")
	assert.NotContains(t, body, ".go:")
	logs := e.logs.String()
	assert.Contains(t, logs, "boom: secret internals", "the panic is logged")
	assert.Contains(t, logs, "goroutine", "with its stack")
	assert.Contains(t, logs, `"status":500`)
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(d *httpapi.Deps) { d.BodyLimit = 1 << 10 })
	form := messageForm("SM1", strings.Repeat("x", 2<<10))

	t.Run("declared length", func(t *testing.T) {
		resp := e.post(t, "/webhook", form, true)
		readBody(t, resp)
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	})
	t.Run("chunked", func(t *testing.T) {
		req := e.request(t, "/webhook", form.Encode(), "c2lnbmVk")
		req.ContentLength = -1 // no Content-Length: only reading finds the excess
		resp, err := e.ts.Client().Do(req)
		require.NoError(t, err)
		readBody(t, resp)
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	})
	assert.Empty(t, e.messages.Received())

	readTwiML(t, e.post(t, "/webhook", messageForm("SM2", "short"), true))
	assert.Len(t, e.messages.Received(), 1, "a body under the limit passes")
}
