package domain

// Speaker says who spoke a turn.
type Speaker uint8

// The two parties of a call.
const (
	Caller Speaker = iota + 1
	Assistant
)

func (s Speaker) String() string {
	switch s {
	case Caller:
		return "caller"
	case Assistant:
		return "assistant"
	}
	return "unknown"
}

// Turn is one utterance of a call.
type Turn struct {
	Speaker Speaker
	// Utterance is the model's name for the utterance, when it gives one.
	Utterance string
	// Text is the transcript, when known.
	Text string
	// StartMs is the caller's media position (milliseconds from the start
	// of the call's media) when the turn began: when the caller's words or
	// speech were first reported, or when the first audio of an assistant
	// utterance was handed to the caller.
	StartMs int64
	// SentMs is the assistant audio handed to the caller for the utterance.
	SentMs int
	// HeardMs is the assistant audio the caller heard: all of it when it
	// played out, up to the interruption when the caller talked over it.
	HeardMs int
	// Interrupted is set on an assistant turn the caller talked over.
	Interrupted bool
}

// Interruption says which assistant utterance the caller talked over and
// how much of it the caller heard.
type Interruption struct {
	Utterance string
	HeardMs   int
}

// segment is a stretch of one assistant utterance's audio on the playback
// timeline: the milliseconds [start, end) of everything handed to the
// caller, in order. heard is how far into it playback has come.
type segment struct {
	turn       int // index into Conversation.turns
	start, end int64
	heard      int64
}

// Conversation is the state of one call: its turns and its playback
// accounting. The zero value is not usable; use NewConversation.
//
// Playback is accounted on one timeline, in milliseconds of assistant
// audio: every millisecond handed to the caller (AssistantAudio) extends
// it, and the telephony side reports how far along it playback has come
// (Played). What lies between the two is outstanding: the caller has not
// heard it yet, and a barge-in clears it.
type Conversation struct {
	callerPosMs int64

	turns       []Turn
	byUtterance map[string]int // utterance -> index into turns

	handedMs int64     // the end of the timeline: audio handed to the caller
	playedMs int64     // how far playback has come (never past handedMs)
	segs     []segment // outstanding stretches, in timeline order
	sHead    int       // segs before sHead have played

	// open are the assistant utterances that have audio and no end yet;
	// refused are those whose further audio is dropped (an interruption
	// cut them while open). Both forget an utterance at its end, so they
	// stay as small as the utterances in flight.
	open    map[string]struct{}
	refused map[string]struct{}

	bargeIns int
	digits   []byte // the first MaxDigits keys pressed
	keys     int    // every key pressed
}

// MaxDigits is how many of the keys a caller presses a Conversation keeps
// (Digits); DigitCount counts them all.
const MaxDigits = 64

// NewConversation returns the state of a new call.
func NewConversation() *Conversation {
	return &Conversation{
		byUtterance: make(map[string]int),
		open:        make(map[string]struct{}),
		refused:     make(map[string]struct{}),
	}
}

// CallerAudio records the caller's media position, from the latest chunk
// of caller audio. Positions never go backwards.
func (c *Conversation) CallerAudio(mediaMs int64) {
	if mediaMs > c.callerPosMs {
		c.callerPosMs = mediaMs
	}
}

// CallerPosition is the caller's latest media position in milliseconds.
func (c *Conversation) CallerPosition() int64 { return c.callerPosMs }

// AssistantAudio accounts for ms milliseconds of the assistant utterance
// about to be handed to the caller. It reports false when the audio must be
// dropped instead: an interruption cut the utterance. Audio of an utterance
// without a name (empty) is accounted to the assistant's latest turn.
func (c *Conversation) AssistantAudio(utterance string, ms int) bool {
	if _, cut := c.refused[utterance]; cut {
		return false
	}
	t := c.assistantTurn(utterance)
	c.open[utterance] = struct{}{}
	if ms <= 0 {
		return true
	}
	c.turns[t].SentMs += ms
	end := c.handedMs + int64(ms)
	if n := len(c.segs); n > c.sHead && c.segs[n-1].turn == t && c.segs[n-1].end == c.handedMs {
		c.segs[n-1].end = end // the utterance goes on: one stretch
	} else {
		c.segs = append(c.segs, segment{turn: t, start: c.handedMs, end: end, heard: c.handedMs})
	}
	c.handedMs = end
	return true
}

// UtteranceDone records that the assistant utterance has no more audio.
func (c *Conversation) UtteranceDone(utterance string) {
	delete(c.open, utterance)
	delete(c.refused, utterance)
}

// Played records that playback has reached positionMs on the timeline:
// the audio before it has been heard. Positions that go backwards, or
// beyond what was handed, change nothing beyond the end of the timeline.
func (c *Conversation) Played(positionMs int64) {
	positionMs = min(positionMs, c.handedMs)
	if positionMs <= c.playedMs {
		return
	}
	c.playedMs = positionMs
	for c.sHead < len(c.segs) {
		s := &c.segs[c.sHead]
		upTo := min(positionMs, s.end)
		if upTo > s.heard {
			c.turns[s.turn].HeardMs += int(upTo - s.heard)
			s.heard = upTo
		}
		if upTo < s.end {
			break
		}
		c.sHead++
	}
	if c.sHead == len(c.segs) { // all played: reuse the backing array
		c.segs, c.sHead = c.segs[:0], 0
	}
}

// Outstanding reports whether assistant audio was handed to the caller
// that has not played yet.
func (c *Conversation) Outstanding() bool { return c.sHead < len(c.segs) }

// OutstandingMs is how much handed assistant audio has not played yet.
func (c *Conversation) OutstandingMs() int64 { return c.handedMs - c.playedMs }

// Withdraw takes back the last ms milliseconds handed to the caller: audio
// accounted by AssistantAudio that was held back and will never be handed
// after all (the caller took the turn). It is taken off the end of the
// timeline and off the turns it was accounted to.
func (c *Conversation) Withdraw(ms int64) {
	ms = min(ms, c.handedMs-c.playedMs)
	for ms > 0 && c.sHead < len(c.segs) {
		s := &c.segs[len(c.segs)-1]
		cut := min(ms, s.end-s.heard)
		s.end -= cut
		c.turns[s.turn].SentMs -= int(cut)
		c.handedMs -= cut
		ms -= cut
		if s.end == s.heard {
			c.segs = c.segs[:len(c.segs)-1]
		}
	}
	if c.sHead >= len(c.segs) {
		c.segs, c.sHead = c.segs[:0], 0
	}
}

// CallerStartedSpeaking records that the caller began to speak (the
// model's name for the caller's utterance, when it gives one) over a
// model that leaves interruptions to the gateway, and decides the
// barge-in: every assistant utterance still open is cut (its further
// audio refused), and when assistant audio is outstanding it returns the
// Interruption to apply and true: the caller's playback must be cleared
// and the model told how much of the utterance being heard was heard.
// With nothing outstanding it returns false: there is nothing to clear.
func (c *Conversation) CallerStartedSpeaking(callerUtterance string) (Interruption, bool) {
	c.callerTurn(callerUtterance)
	for u := range c.open {
		c.refused[u] = struct{}{}
	}
	return c.interrupt()
}

// CallerTookTurn records that the caller's words took the turn while a
// full duplex model was speaking: the model stops by itself, so no
// utterance is cut; when assistant audio is outstanding it returns the
// Interruption and true: the caller's playback must be cleared.
func (c *Conversation) CallerTookTurn() (Interruption, bool) {
	return c.interrupt()
}

// interrupt ends the outstanding playback: the turns being played are
// marked interrupted, and the timeline's played position jumps to its end
// (cleared audio counts as done).
func (c *Conversation) interrupt() (Interruption, bool) {
	if !c.Outstanding() {
		return Interruption{}, false
	}
	heard := c.segs[c.sHead].turn
	last := -1
	for _, s := range c.segs[c.sHead:] {
		if s.turn != last {
			c.turns[s.turn].Interrupted = true
			last = s.turn
		}
	}
	c.segs, c.sHead = c.segs[:0], 0
	c.playedMs = c.handedMs
	c.bargeIns++
	return Interruption{Utterance: c.turns[heard].Utterance, HeardMs: c.turns[heard].HeardMs}, true
}

// BargeIns counts the interruptions so far.
func (c *Conversation) BargeIns() int { return c.bargeIns }

// CallerSaid records words of the caller: the utterance's whole text when
// final, else a piece that continues it. Words without an utterance name
// continue the caller's current turn: the latest turn when it is the
// caller's, else a new one.
func (c *Conversation) CallerSaid(utterance, text string, final bool) {
	c.said(c.callerTurn(utterance), text, final)
}

// AssistantSaid records words of the assistant, as CallerSaid.
func (c *Conversation) AssistantSaid(utterance, text string, final bool) {
	c.said(c.assistantTurn(utterance), text, final)
}

// CallerText is the text of the caller's current turn: the latest turn
// when it is the caller's, else "".
func (c *Conversation) CallerText() string {
	if n := len(c.turns); n > 0 && c.turns[n-1].Speaker == Caller {
		return c.turns[n-1].Text
	}
	return ""
}

func (c *Conversation) said(i int, text string, final bool) {
	if final {
		c.turns[i].Text = text
	} else {
		c.turns[i].Text += text
	}
}

// IsKey reports whether d is one key of a telephone keypad: exactly one of
// 0-9, * and #.
func IsKey(d string) bool {
	return len(d) == 1 && (d[0] >= '0' && d[0] <= '9' || d[0] == '*' || d[0] == '#')
}

// Digit records a key the caller pressed and reports whether it is one
// (IsKey); anything else is ignored. The first MaxDigits keys are kept.
func (c *Conversation) Digit(d string) bool {
	if !IsKey(d) {
		return false
	}
	c.keys++
	if len(c.digits) < MaxDigits {
		c.digits = append(c.digits, d[0])
	}
	return true
}

// Digits returns the first MaxDigits keys pressed, in order.
func (c *Conversation) Digits() string { return string(c.digits) }

// DigitCount counts every key pressed, beyond MaxDigits too.
func (c *Conversation) DigitCount() int { return c.keys }

// Turns returns a copy of the turns so far, in the order they began.
func (c *Conversation) Turns() []Turn { return append([]Turn(nil), c.turns...) }

// assistantTurn returns the turn of the assistant's utterance: the named
// one, else (no name) the latest turn when it is the assistant's; a new
// turn otherwise.
func (c *Conversation) assistantTurn(utterance string) int {
	return c.turn(Assistant, utterance)
}

func (c *Conversation) callerTurn(utterance string) int {
	return c.turn(Caller, utterance)
}

func (c *Conversation) turn(who Speaker, utterance string) int {
	if utterance != "" {
		if i, ok := c.byUtterance[utterance]; ok {
			return i
		}
	} else if n := len(c.turns); n > 0 && c.turns[n-1].Speaker == who && c.turns[n-1].Utterance == "" {
		return n - 1
	}
	c.turns = append(c.turns, Turn{Speaker: who, Utterance: utterance, StartMs: c.callerPosMs})
	i := len(c.turns) - 1
	if utterance != "" {
		c.byUtterance[utterance] = i
	}
	return i
}
