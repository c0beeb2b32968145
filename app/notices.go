package app

import (
	"log/slog"
	"strings"

	"github.com/convgateway/gateway/ports"
)

// What the user is told when there is nothing better to say. None of them
// carries internal detail.
const (
	textMedia       = "I can only read text messages for now. Please send your question as text."
	textEmpty       = "I didn't get any text. What would you like to ask?"
	textApology     = "Sorry, something went wrong and I couldn't answer that. Please try again in a moment."
	textUnavailable = "Sorry, the service is temporarily unavailable. Please try again in a few minutes."
	textRestarting  = "Sorry, we're restarting right now. Please send your message again in a minute."
)

// textReply is an inline reply of one text.
func textReply(text string) ports.Reply { return ports.Reply{Messages: []string{text}} }

// notice returns the polite text that answers msg without the assistant:
// for media, or an empty body.
func notice(msg ports.InboundMessage) (string, bool) {
	switch {
	case msg.NumMedia > 0:
		return textMedia, true
	case strings.TrimSpace(msg.Body) == "":
		return textEmpty, true
	}
	return "", false
}

// logNotice logs that msg was answered with its notice.
func logNotice(log *slog.Logger, msg ports.InboundMessage) {
	if msg.NumMedia > 0 {
		log.Info("media message answered with a notice", "num_media", msg.NumMedia)
		return
	}
	log.Info("empty message answered with a prompt")
}
