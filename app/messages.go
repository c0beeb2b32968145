package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

// Defaults for MessagesDeps.
const (
	// DefaultInlineTimeout leaves a margin under Twilio's 15-second webhook
	// limit.
	DefaultInlineTimeout = 10 * time.Second
	// DefaultMaxLen is Twilio's limit for one outbound message body, in
	// characters.
	DefaultMaxLen = 1600
	// DefaultMaxInlineParts is Twilio's limit of <Message> replies to one
	// incoming message; it drops the others (warning 14109).
	DefaultMaxInlineParts = 10
	// DefaultMaxInlineBytes keeps an inline reply within Twilio's 64 kB
	// limit on a TwiML response (error 11750) whatever the text: XML
	// escaping makes one byte at most five ("&amp;"), and the envelope
	// takes a little more.
	DefaultMaxInlineBytes = 12_000
	// DefaultAbandonedAfter is longer than any answer takes: the inline
	// timeout, the assistant's request (bounded at two minutes by the
	// OpenAI adapters) and the sends, with room for a message that waits
	// behind an earlier one of the same user.
	DefaultAbandonedAfter = 10 * time.Minute
	// DefaultAbandonedEvery is how often the service looks for deliveries
	// never answered.
	DefaultAbandonedEvery = time.Minute
)

// Bounds of the service's own store calls.
const (
	// markTimeout bounds recording that a delivery was answered.
	markTimeout = 5 * time.Second
	// sweepTimeout bounds one look for deliveries never answered.
	sweepTimeout = 30 * time.Second
	// firstSweepAfter is the most the first look waits after NewMessages,
	// so that a restart after a crash reports it promptly.
	firstSweepAfter = 5 * time.Second
)

// The namespaces of the keys the service records in ThreadStore.FirstSeen.
const (
	sidPrefix  = "sid:"  // the MessageSid
	idemPrefix = "idem:" // the I-Twilio-Idempotency-Token
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

// Outcome says how Handle disposed of a message (for metrics).
type Outcome string

// The outcomes of Handle.
const (
	OutcomeInline      Outcome = "inline"      // the answer was returned as the Reply
	OutcomeLater       Outcome = "later"       // the answer is delivered through the MessageSender
	OutcomeDuplicate   Outcome = "duplicate"   // a retried delivery, ignored
	OutcomeUnsupported Outcome = "unsupported" // media or an empty body, answered politely
	OutcomeUnavailable Outcome = "unavailable" // the store was down, answered politely
	OutcomeClosing     Outcome = "closing"     // the service is shutting down, answered politely
	OutcomeInvalid     Outcome = "invalid"     // not a message (ErrInvalidInput)
	OutcomeGone        Outcome = "gone"        // the request was cancelled before anything was done
)

// MessagesHooks are optional observers for metrics. Nil fields are skipped.
// They are called synchronously, possibly from several goroutines at once,
// so they must be fast and safe for concurrent use.
type MessagesHooks struct {
	// Handled is called once per Handle call with its outcome and how long
	// it took.
	Handled func(outcome Outcome, elapsed time.Duration)
	// AssistantReplied is called after each ChatAssistant.Reply with how
	// long it took and its error (nil on success).
	AssistantReplied func(elapsed time.Duration, err error)
}

// MessagesDeps are the dependencies and settings of a MessagesService.
type MessagesDeps struct {
	Store     ports.ThreadStore   // required
	Assistant ports.ChatAssistant // required
	Sender    ports.MessageSender // required
	Logger    *slog.Logger        // nil discards logs
	// InlineTimeout is how long Handle waits for the answer before it
	// returns an empty Reply and lets the answer go out through Sender.
	// Zero means DefaultInlineTimeout.
	InlineTimeout time.Duration
	// MaxLen is the longest message body in characters; longer answers are
	// split (domain.SplitMessage). Zero means DefaultMaxLen.
	MaxLen int
	// MaxInlineParts is the most parts an inline Reply may have; an answer
	// split into more is sent through Sender, all of it, so that the parts
	// keep their order. Zero means DefaultMaxInlineParts.
	MaxInlineParts int
	// MaxInlineBytes is the most bytes of text (all parts together) an
	// inline Reply may carry; a longer answer is sent through Sender.
	// Zero means DefaultMaxInlineBytes.
	MaxInlineBytes int
	// AbandonedAfter is how long after a delivery was taken the service
	// reports it as never answered, when no answer was recorded for it
	// by then (ThreadStore.Abandoned). It must be longer than any answer
	// takes, waiting behind the user's earlier messages included: an
	// answer still on its way in another process after AbandonedAfter is
	// reported all the same. Zero means DefaultAbandonedAfter.
	AbandonedAfter time.Duration
	// AbandonedEvery is how often the service asks the store for such
	// deliveries, the first time shortly after NewMessages. Zero means
	// DefaultAbandonedEvery.
	AbandonedEvery time.Duration
	Hooks          MessagesHooks
}

// MessagesService implements ports.Messages: the WhatsApp/SMS use case.
//
// Guarantees, which hold across gateway processes sharing one ThreadStore:
//
//   - One reply per delivery: a delivery whose MessageSid or idempotency
//     token was already recorded (ThreadStore.FirstSeen) is ignored.
//
//   - One thread per user, and one assistant exchange at a time per user:
//     the work on a message runs under ThreadStore.LockUser, from looking up
//     the thread to handing over or sending the last part of the answer, so
//     answers go out in the order the messages took the lock. Within one
//     process messages from one user also take the lock in arrival order.
//
//   - No answer lost silently: a delivery recorded as new is marked
//     answered (ThreadStore.Delivered) once its answer or a polite text is
//     handed to the webhook or sent, or once sending it failed (that is
//     logged with the MessageSid already). A goroutine of the service asks
//     the store every AbandonedEvery for deliveries taken more than
//     AbandonedAfter ago and never marked (ThreadStore.Abandoned: each is
//     returned to one process once) and logs each at error level with its
//     MessageSid: the process that took it died before answering (a
//     crash, a kill, a Shutdown that gave up on it). Both keys a delivery
//     may be recorded under, its MessageSid and its idempotency token, are
//     marked; only MessageSid keys are reported, so a delivery is reported
//     at most once and a delivery marked answered never is, even if the
//     process died between marking the two. A crash after an answer was
//     handed over and before it was marked reports an answer that may have
//     gone out: the report errs on the side of saying so. An answer this
//     process is still working on is not reported (it is logged when it
//     ends); one still on its way in another process after AbandonedAfter
//     is.
//
// The work on a message runs in a goroutine owned by the service, not by the
// request, so that an answer that misses the inline deadline is still
// delivered. Shutdown drains these goroutines; shut the HTTP server down
// first so that no webhook is cut off.
//
// An inline answer leaves the lock when Handle takes it, before the HTTP
// adapter has written it and Twilio has sent it; the port has no signal for
// "written". The next message of the user is answered only after its own
// assistant exchange, which takes far longer than writing a response, so
// the inline answer still goes out first in practice.
//
// Nothing the user receives carries internal detail, and logs carry the
// MessageSid and a masked sender (last four digits), never message text.
type MessagesService struct {
	store          ports.ThreadStore
	assistant      ports.ChatAssistant
	sender         ports.MessageSender
	log            *slog.Logger
	inlineTimeout  time.Duration
	maxLen         int
	maxInline      int
	maxInlineBytes int
	abandonedAfter time.Duration
	abandonedEvery time.Duration
	hooks          MessagesHooks

	ctx    context.Context // the service's lifetime; cancelled by Shutdown
	cancel context.CancelFunc
	// wg counts Handle calls and message goroutines in flight (pending
	// work), and the goroutine that reports abandoned deliveries
	// (sweepLoop, a loop: not pending work) until stopSweep is closed.
	wg        tracker
	stopSweep chan struct{} // closed by Shutdown
	stopOnce  sync.Once

	mu      sync.Mutex
	closing bool
	// last holds, per user, a channel closed when the most recent message
	// of that user taken in by this process is done: each message waits for
	// its predecessor before it asks for the user's lock.
	last map[string]chan struct{}
	// inFlight counts, per MessageSid, the deliveries this process is
	// working on, from before they are recorded until they are marked
	// answered or dropped: the sweep does not report them.
	inFlight map[string]int
}

var _ ports.Messages = (*MessagesService)(nil)

// NewMessages returns a MessagesService ready to Handle messages, and
// starts its goroutine that reports deliveries never answered. Call
// Shutdown when done with it: it stops that goroutine too.
func NewMessages(d MessagesDeps) *MessagesService {
	if d.InlineTimeout <= 0 {
		d.InlineTimeout = DefaultInlineTimeout
	}
	if d.MaxLen <= 0 {
		d.MaxLen = DefaultMaxLen
	}
	if d.MaxInlineParts <= 0 {
		d.MaxInlineParts = DefaultMaxInlineParts
	}
	if d.MaxInlineBytes <= 0 {
		d.MaxInlineBytes = DefaultMaxInlineBytes
	}
	if d.AbandonedAfter <= 0 {
		d.AbandonedAfter = DefaultAbandonedAfter
	}
	if d.AbandonedEvery <= 0 {
		d.AbandonedEvery = DefaultAbandonedEvery
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &MessagesService{
		store:          d.Store,
		assistant:      d.Assistant,
		sender:         d.Sender,
		log:            d.Logger,
		inlineTimeout:  d.InlineTimeout,
		maxLen:         d.MaxLen,
		maxInline:      d.MaxInlineParts,
		maxInlineBytes: d.MaxInlineBytes,
		abandonedAfter: d.AbandonedAfter,
		abandonedEvery: d.AbandonedEvery,
		hooks:          d.Hooks,
		ctx:            ctx,
		cancel:         cancel,
		stopSweep:      make(chan struct{}),
		last:           make(map[string]chan struct{}),
		inFlight:       make(map[string]int),
	}
	s.wg.Loop(s.sweepLoop)
	return s
}

// job is one message on its way through the service.
type job struct {
	msg  ports.InboundMessage
	log  *slog.Logger
	keys []string        // recorded by firstSeen: marked Delivered once answered
	prev <-chan struct{} // closed when the user's previous message is done
	done chan struct{}   // closed when this message is done
	// answer hands the answer to the waiting Handle (unbuffered: the
	// hand-over and giving up exclude each other); nil means "too much
	// for an inline reply: the parts are sent through the MessageSender".
	answer chan []string
	// gaveUp is closed by Handle when it stops waiting.
	gaveUp chan struct{}
}

// Handle implements ports.Messages. It blocks for at most the inline
// timeout (plus the store calls that record the delivery), or until ctx is
// done; in both cases the answer is then delivered later through the
// MessageSender, as is an answer of more than MaxInlineParts parts (Handle
// then returns an empty Reply as soon as the answer is ready). Safe for
// concurrent use.
//
// Replies and errors:
//   - a duplicate delivery: an empty Reply;
//   - media or an empty body: a polite text, no assistant call;
//   - the store down: a polite "temporarily unavailable" text, error logged;
//   - after Shutdown has begun: a polite "send it again" text, and the
//     delivery is not recorded, so a retry elsewhere is processed;
//   - a missing MessageSid or From: an error wrapping ErrInvalidInput;
//   - ctx done while recording the delivery: an error wrapping ctx.Err().
//
// Assistant failures become a short apology; nothing internal reaches the
// user.
func (s *MessagesService) Handle(ctx context.Context, msg ports.InboundMessage) (ports.Reply, error) {
	start := time.Now()
	reply, outcome, err := s.handle(ctx, msg)
	if s.hooks.Handled != nil {
		s.hooks.Handled(outcome, time.Since(start))
	}
	return reply, err
}

func (s *MessagesService) handle(ctx context.Context, msg ports.InboundMessage) (ports.Reply, Outcome, error) {
	if msg.MessageSid == "" || msg.From == "" {
		return ports.Reply{}, OutcomeInvalid, fmt.Errorf("messages: handle: no MessageSid or From: %w", ports.ErrInvalidInput)
	}
	log := s.log.With("message_sid", msg.MessageSid, "user", maskUser(msg.From))
	if !s.enter() {
		log.Warn("message refused: shutting down")
		return textReply(textRestarting), OutcomeClosing, nil
	}
	defer s.wg.Done()

	// Every branch that answers the delivery (a polite text, or nothing for
	// a duplicate) marks the keys firstSeen recorded, off the webhook's
	// path, and then stops tracking it; a message's goroutine does both
	// for its message. A delivery whose request ended while it was being
	// recorded is answered by nobody (its retry is a duplicate): its keys
	// stay unmarked, so the sweep reports it.
	s.track(msg.MessageSid)
	first, keys, err := s.firstSeen(ctx, msg)
	switch {
	case err != nil && ctx.Err() != nil:
		s.untrack(msg.MessageSid)
		return ports.Reply{}, OutcomeGone, fmt.Errorf("messages: handle: %w", ctx.Err())
	case err != nil:
		log.Error("message not processed: idempotency store failed", "err", err)
		s.markLater(log, msg.MessageSid, keys)
		return textReply(textUnavailable), OutcomeUnavailable, nil
	case !first:
		log.Info("duplicate delivery ignored")
		s.markLater(log, msg.MessageSid, keys)
		return ports.Reply{}, OutcomeDuplicate, nil
	case msg.NumMedia > 0:
		log.Info("media message answered with a notice", "num_media", msg.NumMedia)
		s.markLater(log, msg.MessageSid, keys)
		return textReply(textMedia), OutcomeUnsupported, nil
	case strings.TrimSpace(msg.Body) == "":
		log.Info("empty message answered with a prompt")
		s.markLater(log, msg.MessageSid, keys)
		return textReply(textEmpty), OutcomeUnsupported, nil
	}

	j := s.start(msg, log, keys)
	timer := time.NewTimer(s.inlineTimeout)
	defer timer.Stop()
	select {
	case parts := <-j.answer:
		if parts == nil {
			log.Info("answer too long for an inline reply: it is sent through the Messages API")
			return ports.Reply{}, OutcomeLater, nil
		}
		return ports.Reply{Messages: parts}, OutcomeInline, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	close(j.gaveUp)
	log.Info("answer not ready in time: it will be sent later")
	return ports.Reply{}, OutcomeLater, nil
}

// enter counts a Handle call in, unless the service is shutting down.
func (s *MessagesService) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	return true
}

// firstSeen records the delivery under its MessageSid and, when Twilio sent
// one, its idempotency token, and reports whether neither was seen before.
// The MessageSid is always recorded so that a retry that lacks the header
// is still caught; the token catches a retry whatever else it carries. The
// keys are namespaced so that the two kinds never collide. It also returns
// the keys it recorded as new, whatever the outcome (a delivery new by its
// MessageSid may be a duplicate by its token): the caller marks them
// Delivered once the delivery is answered.
func (s *MessagesService) firstSeen(ctx context.Context, msg ports.InboundMessage) (first bool, recorded []string, err error) {
	sid := sidPrefix + msg.MessageSid
	first, err = s.store.FirstSeen(ctx, sid)
	if err != nil || !first {
		return false, nil, err
	}
	recorded = []string{sid}
	if msg.IdempotencyKey == "" {
		return true, recorded, nil
	}
	idem := idemPrefix + msg.IdempotencyKey
	first, err = s.store.FirstSeen(ctx, idem)
	if err == nil && first {
		recorded = append(recorded, idem)
	}
	return first, recorded, err
}

// markLater marks keys Delivered in a goroutine of the service, so that
// the webhook does not wait for it, and then stops tracking the message
// sid. The caller must hold a count in s.wg.
func (s *MessagesService) markLater(log *slog.Logger, sid string, keys []string) {
	if len(keys) == 0 {
		s.untrack(sid)
		return
	}
	s.wg.Go(func() {
		defer s.untrack(sid)
		s.markDelivered(log, keys)
	})
}

// track counts a delivery of the message sid in as one this process works
// on; untrack counts it out.
func (s *MessagesService) track(sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[sid]++
}

func (s *MessagesService) untrack(sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.untrackLocked(sid)
}

func (s *MessagesService) untrackLocked(sid string) {
	if s.inFlight[sid]--; s.inFlight[sid] <= 0 {
		delete(s.inFlight, sid)
	}
}

// markDelivered records that the delivery recorded under keys (its
// MessageSid key first) was answered. A failure is logged: the sweep may
// then report the delivery as never answered.
func (s *MessagesService) markDelivered(log *slog.Logger, keys []string) {
	ctx, cancel := context.WithTimeout(s.ctx, markTimeout)
	defer cancel()
	for _, k := range keys {
		if err := s.store.Delivered(ctx, k); err != nil {
			log.Warn("answer not recorded as delivered: it may be reported as never delivered", "err", err)
			return
		}
	}
}

// start queues msg behind the user's previous message in this process and
// starts its goroutine, which untracks msg when it is done. The caller
// must hold a count in s.wg and have tracked msg.
func (s *MessagesService) start(msg ports.InboundMessage, log *slog.Logger, keys []string) *job {
	j := &job{
		msg:    msg,
		log:    log,
		keys:   keys,
		done:   make(chan struct{}),
		answer: make(chan []string),
		gaveUp: make(chan struct{}),
	}
	s.mu.Lock()
	j.prev = s.last[msg.From]
	s.last[msg.From] = j.done
	s.mu.Unlock()
	s.wg.Go(func() { s.run(j) })
	return j
}

// finish marks j done, letting the user's next message go, and untracks
// it.
func (s *MessagesService) finish(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last[j.msg.From] == j.done {
		delete(s.last, j.msg.From)
	}
	s.untrackLocked(j.msg.MessageSid)
	close(j.done)
}

// run does the work on one message: wait for the user's previous message,
// take the user's lock, get the answer, deliver it and mark the delivery
// answered, all before the lock is released. An answer dropped because the
// service stopped is not marked: Shutdown logs it, and so does the sweep of
// the next start.
func (s *MessagesService) run(j *job) {
	defer s.finish(j)
	ctx := s.ctx
	if j.prev != nil {
		select {
		case <-j.prev:
		case <-ctx.Done():
			s.dropped(j, 0, ctx.Err())
			return
		}
	}
	unlock, err := s.store.LockUser(ctx, j.msg.From)
	if err != nil {
		if ctx.Err() != nil {
			s.dropped(j, 0, err)
			return
		}
		j.log.Error("message not processed: user lock failed", "err", err)
		if s.deliver(ctx, j, []string{textUnavailable}) {
			s.markDelivered(j.log, j.keys)
		}
		return
	}
	defer unlock()
	parts, err := s.answer(ctx, j)
	if err != nil {
		s.dropped(j, 0, err)
		return
	}
	if s.deliver(ctx, j, parts) {
		s.markDelivered(j.log, j.keys)
	}
}

// answer gets the assistant's answer to j, split into message parts, or the
// polite text that replaces it. It returns an error only when ctx ended
// (the service is being stopped), leaving nothing to deliver.
func (s *MessagesService) answer(ctx context.Context, j *job) ([]string, error) {
	thread, err := s.thread(ctx, j.msg.From)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		j.log.Error("message not processed: thread lookup failed", "err", err)
		if errors.Is(err, ports.ErrUnavailable) {
			return []string{textUnavailable}, nil
		}
		return []string{textApology}, nil
	}
	start := time.Now()
	text, err := s.assistant.Reply(ctx, thread, j.msg.Body)
	if s.hooks.AssistantReplied != nil {
		s.hooks.AssistantReplied(time.Since(start), err)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		j.log.Error("assistant failed", "thread", thread, "err", err)
		return []string{textApology}, nil
	}
	parts := domain.SplitMessage(text, s.maxLen)
	if len(parts) == 0 {
		j.log.Error("assistant gave an empty answer", "thread", thread)
		return []string{textApology}, nil
	}
	return parts, nil
}

// thread returns the user's thread, creating it on first use. The store
// decides between concurrent creators (across processes too): every caller
// uses the thread it returns.
func (s *MessagesService) thread(ctx context.Context, user string) (string, error) {
	id, err := s.store.Thread(ctx, user)
	if !errors.Is(err, ports.ErrNotFound) {
		return id, err
	}
	id, err = s.assistant.NewThread(ctx)
	if err != nil {
		return "", err
	}
	return s.store.SaveThread(ctx, user, id)
}

// deliver hands parts to the waiting Handle, or, when Handle stopped
// waiting or the answer is more than an inline reply may carry, sends
// them through the MessageSender in order (Handle is then told to answer
// the webhook with nothing, so that all parts go one way). A part that
// cannot be sent is logged with what remains undelivered; the later parts
// are not sent, so that the user never receives an answer with a hole. A
// failed send is not retried: when its response was lost the message may
// have gone out, and a repeated answer is worse than a logged one.
//
// deliver reports whether the delivery is done with: the answer handed
// over or sent, or a send failed (logged here with the MessageSid, so that
// marking the delivery answered spares the log a second, misleading "the
// gateway stopped" report). It reports false when ctx ended first.
func (s *MessagesService) deliver(ctx context.Context, j *job, parts []string) bool {
	inline := parts
	if len(parts) > s.maxInline || size(parts) > s.maxInlineBytes {
		inline = nil
	}
	select {
	case j.answer <- inline:
		if inline != nil {
			return true
		}
	case <-j.gaveUp:
	case <-ctx.Done():
		s.dropped(j, chars(parts), ctx.Err())
		return false
	}
	for i, p := range parts {
		_, err := s.sender.Send(ctx, ports.OutboundMessage{To: j.msg.From, From: j.msg.To, Body: p})
		if err != nil {
			if ctx.Err() != nil {
				s.dropped(j, chars(parts[i:]), err)
				return false
			}
			j.log.Error("answer not delivered: send failed",
				"part", i+1, "parts", len(parts), "undelivered_chars", chars(parts[i:]), "err", err)
			return true
		}
	}
	j.log.Info("answer sent later", "parts", len(parts))
	return true
}

// dropped logs an answer abandoned because the service stopped: the
// operator can find the exchange by its MessageSid. The text itself is not
// logged (it is personal data); its length is.
func (s *MessagesService) dropped(j *job, undeliveredChars int, err error) {
	j.log.Error("answer not delivered: shutting down", "undelivered_chars", undeliveredChars, "err", err)
}

// sweepLoop reports abandoned deliveries: first after firstSweepAfter (or
// AbandonedEvery if shorter), then every AbandonedEvery, until Shutdown.
func (s *MessagesService) sweepLoop() {
	t := time.NewTimer(min(firstSweepAfter, s.abandonedEvery))
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
		}
		s.sweep()
		t.Reset(s.abandonedEvery)
	}
}

// sweep claims the deliveries taken more than AbandonedAfter ago and never
// marked answered, by any process sharing the store, and logs each
// MessageSid among them at error level; idempotency-token keys are
// skipped (their delivery's MessageSid key stands for it). A store failure
// is logged at warn level: the next sweep tries again.
func (s *MessagesService) sweep() {
	defer s.wg.Busy()() // pending work while it runs: Shutdown reports cutting it
	ctx, cancel := context.WithTimeout(s.ctx, sweepTimeout)
	defer cancel()
	keys, err := s.store.Abandoned(ctx, s.abandonedAfter)
	if err != nil {
		s.log.Warn("could not look for answers never delivered: trying again later",
			"retry_in", s.abandonedEvery.String(), "err", err)
		return
	}
	reported := 0
	for _, k := range keys {
		sid, ok := strings.CutPrefix(k, sidPrefix)
		if !ok {
			continue
		}
		if s.working(sid) {
			s.log.Warn("answer still in progress long after the message was taken: not reported as lost, its outcome is logged when it ends",
				"message_sid", sid, "abandoned_after", s.abandonedAfter.String())
			continue
		}
		s.log.Error("answer never delivered: the gateway that took this message stopped before sending it",
			"message_sid", sid)
		reported++
	}
	s.log.Debug("looked for answers never delivered", "claimed", len(keys), "reported", reported)
}

// working reports whether this process is working on the message sid.
func (s *MessagesService) working(sid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight[sid] > 0
}

// Shutdown stops taking new messages (Handle answers them with a polite
// "send it again") and stops looking for abandoned deliveries, then waits
// until every message in flight has been answered and its answer
// delivered. When ctx ends first it cancels the remaining work, which logs
// each undelivered answer with its MessageSid (the next start's sweep
// reports those again, since they were never answered), waits for it to
// stop, and returns an error wrapping ctx.Err(). No goroutine of the
// service outlives Shutdown. Safe to call more than once and concurrently
// with Handle.
func (s *MessagesService) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.stopOnce.Do(func() { close(s.stopSweep) })
	defer s.cancel()
	if err := drain(ctx, &s.wg, s.cancel); err != nil {
		return fmt.Errorf("messages: shutdown: %w", err)
	}
	return nil
}

func textReply(text string) ports.Reply { return ports.Reply{Messages: []string{text}} }

// size is the number of bytes in parts.
func size(parts []string) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

func chars(parts []string) int {
	n := 0
	for _, p := range parts {
		n += utf8.RuneCountInString(p)
	}
	return n
}

// maskUser returns a loggable form of an address: its channel prefix and
// last four characters ("whatsapp:…4567"). Phone numbers are personal data.
func maskUser(addr string) string {
	prefix := ""
	if i := strings.IndexByte(addr, ':'); i >= 0 {
		prefix, addr = addr[:i+1], addr[i+1:]
	}
	r := []rune(addr)
	if len(r) <= 4 {
		return prefix + "…"
	}
	return prefix + "…" + string(r[len(r)-4:])
}
