package domain

import "strconv"

// BytesPerMs is the size of one millisecond of 8 kHz, 8-bit mu-law audio.
const BytesPerMs = 8

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
	// ItemID is the model's conversation item for the utterance.
	ItemID string
	// Text is the transcript, when known.
	Text string
	// StartMs is the caller's media position (milliseconds from the start
	// of the stream) when the turn began: when the caller started speaking,
	// or when the first audio of an assistant item was sent.
	StartMs int64
	// SentMs is the assistant audio sent to the caller for the item.
	SentMs int
	// HeardMs is the assistant audio the caller heard: the whole item when
	// it played out, the truncation point when it was interrupted.
	HeardMs int
	// Interrupted is set on an assistant turn the caller talked over.
	Interrupted bool
}

// Interruption says which assistant item to cut and where: the caller heard
// AudioEndMs milliseconds of it.
type Interruption struct {
	ItemID     string
	AudioEndMs int
}

// MarkResult says what an echoed playback mark meant.
type MarkResult uint8

// The outcomes of MarkEchoed.
const (
	// MarkUnknown: a mark this conversation did not send (or already saw).
	MarkUnknown MarkResult = iota
	// MarkPlayed: the audio sent before the mark has played.
	MarkPlayed
	// MarkFlushed: the mark was pending when playback was cleared; the
	// audio before it was discarded, not played.
	MarkFlushed
)

// audio is the playback accounting of one assistant item, kept beside its
// turn.
type audio struct {
	response string
	sent     int // bytes sent to the caller
	heard    int // bytes acknowledged as played by echoed marks
}

// pendingMark is a mark sent after a chunk of an item's audio and not yet
// echoed. Marks are named "m" and a sequence number (markName), so the
// accounting keeps numbers, not names.
type pendingMark struct {
	seq  uint64
	turn int // the item's index into Conversation.turns
	// upTo is the item's byte offset at the end of the chunk before the mark.
	upTo int
}

// markRange is a run of marks flushed by a clear, by sequence number: next
// is the lowest not echoed yet, last the highest.
type markRange struct{ next, last uint64 }

// Conversation is the state of one call: its turns and its playback
// accounting. The zero value is not usable; use NewConversation.
type Conversation struct {
	callerPosMs int64

	turns  []Turn
	audio  []audio        // parallel to turns
	byItem map[string]int // item id -> index into turns

	// marks pending since the last clear, in the order sent (which is the
	// playback order), with consecutive sequence numbers; marks before
	// mHead have been echoed. The item of the first pending mark is the one
	// the caller is hearing.
	marks []pendingMark
	mHead int
	// flushed are the marks that were pending at each clear and have not
	// been echoed yet (Twilio echoes them, in order, right after it).
	flushed []markRange
	markSeq uint64

	active map[string]struct{} // responses created and not yet done
	// interrupted are the responses whose further audio is refused: only
	// responses still active (a finished response sends nothing more), each
	// forgotten when it is done, so the set never outgrows active.
	interrupted map[string]struct{}

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
		byItem:      make(map[string]int),
		active:      make(map[string]struct{}),
		interrupted: make(map[string]struct{}),
	}
}

// CallerAudio records the caller's media position, from the timestamp of
// the latest inbound media chunk. Positions never go backwards.
func (c *Conversation) CallerAudio(timestampMs int64) {
	if timestampMs > c.callerPosMs {
		c.callerPosMs = timestampMs
	}
}

// CallerPosition is the caller's latest media position in milliseconds.
func (c *Conversation) CallerPosition() int64 { return c.callerPosMs }

// ResponseStarted records that the model began a response.
func (c *Conversation) ResponseStarted(responseID string) {
	c.active[responseID] = struct{}{}
}

// ResponseFinished records that a response ended (completed, cancelled or
// failed): the model sends nothing of it after that.
func (c *Conversation) ResponseFinished(responseID string) {
	delete(c.active, responseID)
	delete(c.interrupted, responseID)
}

// ResponseActive reports whether a response has started and not finished:
// only then may a cancel be sent.
func (c *Conversation) ResponseActive() bool { return len(c.active) > 0 }

// AssistantAudio accounts for n bytes of assistant audio of itemID (part of
// responseID) about to be sent to the caller. It returns ok false when the
// audio must be dropped: its response was interrupted. Otherwise it returns
// the name of the mark to send right after the audio, so that its echo tells
// when the audio has played; mark is empty when n is 0 (nothing to play).
func (c *Conversation) AssistantAudio(responseID, itemID string, n int) (mark string, ok bool) {
	if _, cut := c.interrupted[responseID]; cut {
		return "", false
	}
	if n <= 0 {
		c.assistantTurn(itemID)
		return "", true
	}
	t := c.assistantTurn(itemID)
	a := &c.audio[t]
	a.response = responseID
	a.sent += n
	c.turns[t].SentMs = a.sent / BytesPerMs

	c.markSeq++
	c.marks = append(c.marks, pendingMark{seq: c.markSeq, turn: t, upTo: a.sent})
	return markName(c.markSeq), true
}

// markName is the name of the mark with sequence number seq.
func markName(seq uint64) string {
	var b [21]byte
	return string(strconv.AppendUint(append(b[:0], 'm'), seq, 10))
}

// MarkSeq is the sequence number of a mark name in the form AssistantAudio
// makes ("m" and a number from 1, without leading zeros), or false for
// any other name: such a mark is not one of ours, whatever the
// conversation sent. It allocates nothing, so a reader can check echoes
// before it keeps them.
func MarkSeq(name string) (uint64, bool) {
	if len(name) < 2 || len(name) > 21 || name[0] != 'm' || name[1] == '0' {
		return 0, false
	}
	seq, err := strconv.ParseUint(name[1:], 10, 64)
	return seq, err == nil
}

// MarkEchoed accounts for a mark echoed by the telephony side. Marks are
// echoed in the order sent; an echo for a later mark implies the earlier
// ones played too.
func (c *Conversation) MarkEchoed(name string) MarkResult {
	seq, ok := MarkSeq(name)
	if !ok {
		return MarkUnknown
	}
	return c.MarkSeqEchoed(seq)
}

// MarkSeqEchoed is MarkEchoed for the mark whose sequence number (MarkSeq)
// is seq.
func (c *Conversation) MarkSeqEchoed(seq uint64) MarkResult {
	for i := range c.flushed {
		r := &c.flushed[i]
		if seq < r.next || seq > r.last {
			continue
		}
		// Echoes come in order: the marks before this one were flushed too.
		r.next = seq + 1
		if r.next > r.last {
			c.flushed = append(c.flushed[:i], c.flushed[i+1:]...)
		}
		return MarkFlushed
	}
	if !c.Outstanding() || seq < c.marks[c.mHead].seq {
		return MarkUnknown // not sent, or already echoed
	}
	i := c.mHead + int(seq-c.marks[c.mHead].seq)
	if i >= len(c.marks) {
		return MarkUnknown
	}
	for _, m := range c.marks[c.mHead : i+1] {
		c.audio[m.turn].heard = m.upTo
		c.turns[m.turn].HeardMs = m.upTo / BytesPerMs
	}
	c.mHead = i + 1
	if c.mHead == len(c.marks) { // all played: reuse the backing array
		c.marks, c.mHead = c.marks[:0], 0
	}
	return MarkPlayed
}

// Outstanding reports whether assistant audio has been sent that the
// caller has not heard yet (a mark is pending).
func (c *Conversation) Outstanding() bool { return c.mHead < len(c.marks) }

// CallerStartedSpeaking records that the caller began to speak (the model's
// item callerItemID) and decides the barge-in. When assistant audio is
// outstanding it returns the Interruption to apply and true: the caller's
// playback must be cleared and the item truncated at AudioEndMs, the audio
// acknowledged as played for the item being heard (never more than was sent
// for it). From then on, marks still pending count as flushed and further
// audio of any response still in progress (started and not finished: the
// interrupted ones among them) is refused. With nothing outstanding it
// returns false: there is nothing to clear.
func (c *Conversation) CallerStartedSpeaking(callerItemID string) (Interruption, bool) {
	if callerItemID != "" {
		if _, ok := c.byItem[callerItemID]; !ok {
			c.addTurn(Turn{Speaker: Caller, ItemID: callerItemID, StartMs: c.callerPosMs})
		}
	}
	// Whatever the model is still generating is superseded by the caller.
	for id := range c.active {
		c.interrupted[id] = struct{}{}
	}
	if !c.Outstanding() {
		return Interruption{}, false
	}

	pending := c.marks[c.mHead:]
	heard := pending[0].turn
	c.flushed = append(c.flushed, markRange{next: pending[0].seq, last: pending[len(pending)-1].seq})
	last := -1
	for _, m := range pending {
		if m.turn == last {
			continue
		}
		last = m.turn
		// Its response, if still in progress, is among the active ones
		// refused above; a finished one sends nothing more.
		c.turns[m.turn].Interrupted = true
	}
	c.marks, c.mHead = c.marks[:0], 0
	c.bargeIns++
	return Interruption{ItemID: c.turns[heard].ItemID, AudioEndMs: c.audio[heard].heard / BytesPerMs}, true
}

// BargeIns counts the interruptions so far.
func (c *Conversation) BargeIns() int { return c.bargeIns }

// CallerSaid records the transcript of a caller item.
func (c *Conversation) CallerSaid(itemID, text string) {
	i, ok := c.byItem[itemID]
	if !ok {
		i = c.addTurn(Turn{Speaker: Caller, ItemID: itemID, StartMs: c.callerPosMs})
	}
	c.turns[i].Text = text
}

// AssistantSaid records the transcript of an assistant item.
func (c *Conversation) AssistantSaid(itemID, text string) {
	c.turns[c.assistantTurn(itemID)].Text = text
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

func (c *Conversation) assistantTurn(itemID string) int {
	if i, ok := c.byItem[itemID]; ok {
		return i
	}
	return c.addTurn(Turn{Speaker: Assistant, ItemID: itemID, StartMs: c.callerPosMs})
}

func (c *Conversation) addTurn(t Turn) int {
	c.turns = append(c.turns, t)
	c.audio = append(c.audio, audio{})
	i := len(c.turns) - 1
	if t.ItemID != "" {
		c.byItem[t.ItemID] = i
	}
	return i
}
