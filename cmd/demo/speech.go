package main

import (
	"context"
	"io"
	"time"

	"github.com/convgateway/gateway/configs"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mediasim"
)

// speech is the model side of the demo call: the simulator of the speech
// backend the gateway is built with (SPEECH_BACKEND), what it recorded,
// and what must have happened on it. The two backends handle the caller
// talking over the assistant differently, so each checks the call its own
// way.
type speech interface {
	// name names the backend for the transcript: "Realtime", "GPT-Live".
	name() string
	// configure points the gateway's configuration at the simulator.
	configure(cfg *configs.Config)
	// session waits until the gateway's session is open and configured
	// (its lines go on the timeline later, from the records).
	session(ctx context.Context) error
	// check checks what the call left behind, as the backend must have
	// it, and adds what the model side saw to the timeline.
	check(r callRecord) (callReport, error)
	// explain prints how the barge-in went, in the backend's terms.
	explain(w io.Writer, r callRecord, rep callReport)
	// results returns the tool results the model received, in order.
	results() []ports.ToolResult
	// close stops the simulator and what drives it.
	close()
}

// callRecord is everything the demo call left behind: the script it
// followed, the gateway's log lines, and what the caller recorded.
type callRecord struct {
	script  []turn
	summary logLine // the gateway's "call ended"
	// interruption is the gateway's "caller interrupted the assistant"
	// line, when it logged one.
	interruption *logLine
	// bargeAt is when the caller started talking over the first answer,
	// having played bargePlayed bytes of it.
	bargeAt     time.Time
	bargePlayed int
	// clear is what the caller had when the first clear arrived; clears
	// counts the clears it received.
	clear  atClear
	clears int
	// frames, marks and played are the caller's records: the frames the
	// gateway sent, the marks echoed, the bytes of audio played.
	frames []mediasim.Frame
	marks  []mediasim.MarkEcho
	played int
	// acts is what the tools did.
	acts acts
}

// atClear is what the caller had when the clear arrived.
type atClear struct {
	seen   bool
	at     time.Time
	played int // bytes of audio played, the part of the chunk cut by the clear included
}

// callReport is what the checks worked out for the transcript.
type callReport struct {
	turns []turnLog
	usage map[string]any
	// The first answer's marks (one per chunk handed to the caller): how
	// many there were, came back played, and came back flushed by the
	// clear.
	chunks, playedMarks, flushed int
}

// turnLog is a turn of the gateway's "call ended" line.
type turnLog struct {
	Speaker     string `json:"speaker"`
	Utterance   string `json:"utterance"`
	Text        string `json:"text"`
	StartMs     int64  `json:"start_ms"`
	SentMs      int    `json:"sent_ms"`
	HeardMs     int    `json:"heard_ms"`
	Interrupted bool   `json:"interrupted"`
}

// simEvent holds the fields the demo reads of a simulator's server event.
type simEvent struct {
	Type       string   `json:"type"`
	Delta      string   `json:"delta"`        // GPT-Live transcripts
	ItemID     string   `json:"item_id"`      // Realtime truncations
	AudioEndMs int      `json:"audio_end_ms"` // Realtime truncations
	Error      simError `json:"error"`
}

type simError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e simError) String() string { return e.Code + ": " + e.Message }
