package app

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A send whose outcome is unknown (Twilio may have sent it) is logged as
// such, not repeated, and ends the answer: the later parts are not sent.
// The delivery counts as answered (it is not reported as never delivered).
func TestHandleSendOutcomeUnknown(t *testing.T) {
	h := newHarness(t, func(d *MessagesDeps) { d.MaxLen, d.MaxInlineParts = 40, 2 })
	h.sender.LoseNext()
	h.asst.QueueReplies(strings.Repeat("Twenty chars here. ", 10))
	require.Empty(t, handle(t, h.svc, msg("SM-unknown", "tell me a lot")).Messages)
	require.Eventually(t, func() bool { return strings.Contains(h.logs.String(), "outcome is unknown") }, wait, time.Millisecond)
	assert.Empty(t, unanswered(t, h))

	assert.Len(t, h.sender.Sent(), 1, "the part that may have gone out, once")
	assert.Equal(t, 1, h.sender.Attempts(), "not repeated, and nothing after it")
	logs := h.logs.String()
	assert.Regexp(t, `level=ERROR msg="answer may or may not have been delivered: the send's outcome is unknown" message_sid=SM-unknown user=\S+ outcome=unknown part=1 parts=5 unknown_chars=37 undelivered_chars=148`, logs)
	assert.NotContains(t, logs, "answer not delivered")
}
