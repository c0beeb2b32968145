package messaging

import "github.com/convgateway/gateway/ports"

// Twilio's limits on messages, which Sender.Limits reports.
const (
	// MaxBodyChars is Twilio's limit for one outbound message body, in
	// characters, for SMS and WhatsApp alike: a longer body is refused
	// (error 21617).
	MaxBodyChars = 1600
	// MaxReplyMessages is Twilio's limit of <Message> replies to one
	// incoming message; it drops the others (warning 14109).
	MaxReplyMessages = 10
	// MaxReplyBytes keeps an inline reply within Twilio's 64 kB limit on
	// a TwiML response (error 11750) whatever the text: XML escaping
	// makes one byte at most five ("&amp;"), and the envelope takes a
	// little more.
	MaxReplyBytes = 12_000
)

// Limits returns Twilio's limits on messages: MaxBodyChars,
// MaxReplyMessages and MaxReplyBytes (see ports.MessageSender). It does
// not block.
func (s *Sender) Limits() ports.MessageLimits {
	return ports.MessageLimits{
		MaxChars:         MaxBodyChars,
		MaxReplyMessages: MaxReplyMessages,
		MaxReplyBytes:    MaxReplyBytes,
	}
}
