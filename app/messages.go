package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
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
	// DefaultPartInterval is the least time between the sends of two parts
	// of one answer through the REST API. Twilio queues what a sender
	// cannot send at once (a US long code sends one SMS segment a second,
	// a WhatsApp sender 10 text messages a second by default: Twilio's
	// docs on error 30001, "Queue overflow", and its WhatsApp "Best
	// Practices and FAQs", "MPS limit"), and does not promise that
	// messages sent in quick succession arrive in order. One part a second
	// keeps a long answer from being a burst of requests for one sender
	// and lets each part get ahead of the next.
	DefaultPartInterval = time.Second
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
	// maxWatchEvery bounds how long a repeat of a delivery another
	// gateway owns waits between two looks at it (TakeOver): a tenth of
	// the lease's ttl, at most this.
	maxWatchEvery = 500 * time.Millisecond
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
	// PartInterval is the least time between the starts of the sends of
	// two parts of one answer through Sender. Zero means
	// DefaultPartInterval; a negative value sends them back to back.
	PartInterval time.Duration
	// Instance is the process's lease, whose id owns the deliveries the
	// service takes. Nil: the service makes one on Store (NewInstance,
	// DefaultLeaseTTL) and shuts it down in Shutdown; a shared one is
	// shut down by its owner, after the service.
	Instance *Instance
	Hooks    MessagesHooks
}

// MessagesService implements ports.Messages: the WhatsApp/SMS use case.
//
// Guarantees, which hold across gateway processes sharing one ThreadStore:
//
//   - One reply per delivery: a delivery whose MessageSid or idempotency
//     token was already recorded (ThreadStore.FirstSeen) is a repeat (Twilio
//     retries a webhook whose answer it did not get). A repeat is ignored
//     when the delivery was answered, or when this process or another
//     gateway alive (it holds its lease, see Instance) owns it: that one
//     answers it. A repeat of a delivery whose owner stopped before
//     answering it (crashed, killed, or shut down without finishing it)
//     is taken over (ThreadStore.TakeOver: by one gateway only) and
//     answered. When the owner's lease is still live, the repeat may
//     have come after a crash faster than the lease's ttl (a restart):
//     the service then looks at the delivery again every tenth of the
//     ttl, for as long as the ttl, and takes it over if its owner's lease
//     expires meanwhile without it being answered; it answers inline when
//     that happens within the inline timeout, else later through the
//     MessageSender. An owner that renews its lease all that time is
//     alive, and the repeat is ignored.
//
//   - One thread per user, and one assistant exchange at a time per user:
//     the work on a message runs under ThreadStore.LockUser, from looking up
//     the thread to handing over or sending the last part of the answer, so
//     answers go out in the order the messages took the lock. Within one
//     process messages from one user also take the lock in arrival order.
//
//   - No answer lost silently: a delivery recorded as new is marked
//     answered (ThreadStore.Delivered) once its answer or a polite text is
//     handed to the webhook or sent, or once sending it failed or its
//     outcome became unknown (that is logged with the MessageSid already).
//     A goroutine of the service asks the store every AbandonedEvery for
//     deliveries taken more than AbandonedAfter ago, never marked, and
//     whose owner's lease has ended (ThreadStore.Abandoned: each is
//     returned to one process once) and logs each at error level with its
//     MessageSid: the process that took it died before answering (a
//     crash, a kill, a Shutdown that gave up on it), and no repeat came
//     that another gateway took over. Both keys a delivery
//     may be recorded under, its MessageSid and its idempotency token, are
//     marked; only MessageSid keys are reported, so a delivery is reported
//     at most once and a delivery marked answered never is, even if the
//     process died between marking the two. A crash after an answer was
//     handed over and before it was marked reports an answer that may have
//     gone out: the report errs on the side of saying so; so does a
//     takeover, which may answer a delivery twice. An answer still on its
//     way in a process whose lease is live is not reported (it is logged
//     when it ends).
//
//   - Answers sent later go out part after part, PartInterval apart. A
//     send whose outcome is unknown (ports.ErrOutcomeUnknown: Twilio may
//     have sent it) is not repeated, and is logged as such.
//
//   - A thread the assistant no longer knows (ports.ErrNotFound: deleted,
//     or expired) is replaced by a new one (ThreadStore.ReplaceThread: by
//     one process only), on which the message is answered; the user's
//     next messages use it.
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
	partInterval   time.Duration
	instance       *Instance
	ownInstance    bool // made by NewMessages: shut down by Shutdown
	watchEvery     time.Duration
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
// starts its goroutine that reports deliveries never answered (and its
// Instance's, when it makes its own). Call Shutdown when done with it: it
// stops those goroutines too.
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
	if d.PartInterval == 0 {
		d.PartInterval = DefaultPartInterval
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	own := d.Instance == nil
	if own {
		d.Instance = NewInstance(InstanceDeps{Leases: d.Store, Logger: d.Logger})
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
		partInterval:   d.PartInterval,
		instance:       d.Instance,
		ownInstance:    own,
		watchEvery:     min(d.Instance.TTL()/10, maxWatchEvery),
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
	keys []string        // marked Delivered once answered
	prev <-chan struct{} // closed when the user's previous message is done
	done chan struct{}   // closed when this message is done
	// answer hands the answer to the waiting Handle (unbuffered: the
	// hand-over and giving up exclude each other); nil means "too much
	// for an inline reply: the parts are sent through the MessageSender".
	answer chan []string
	// gaveUp is closed by Handle when it stops waiting.
	gaveUp chan struct{}
	// watch, when set, is the key of a repeated delivery that another
	// gateway alive owned when the repeat came: the job first waits to
	// take it over (await), and is a duplicate if it does not.
	watch string
	// duplicate is closed when the watched delivery turned out to be
	// another's to answer.
	duplicate chan struct{}
	// taken is set once the watched delivery was taken over.
	taken atomic.Bool
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
//   - a repeat of a delivery whose owner stopped: the delivery is taken
//     over and answered as a new one;
//   - a repeat of a delivery another gateway alive owns: the answer if
//     the delivery is taken over (its owner's lease expired) in time, an
//     empty Reply otherwise (as soon as the owner has answered it, or at
//     the inline timeout: then this process goes on watching it for the
//     rest of the lease's ttl, and sends the answer if it takes it over);
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
	// recorded is answered by nobody (its repeat finds it owned by this
	// process, alive): its keys stay unmarked, so the sweep reports it
	// once this process has stopped.
	s.track(msg.MessageSid)
	first, keys, repeat, err := s.firstSeen(ctx, msg)
	claim := ports.ClaimTaken
	if err == nil && !first {
		claim, err = s.takeOver(ctx, repeat)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		s.untrack(msg.MessageSid)
		return ports.Reply{}, OutcomeGone, fmt.Errorf("messages: handle: %w", ctx.Err())
	case err != nil:
		log.Error("message not processed: idempotency store failed", "err", err)
		s.markLater(log, msg.MessageSid, keys)
		return textReply(textUnavailable), OutcomeUnavailable, nil
	case claim == ports.ClaimSettled || claim == ports.ClaimOwned:
		log.Info("duplicate delivery ignored")
		s.markLater(log, msg.MessageSid, keys)
		return ports.Reply{}, OutcomeDuplicate, nil
	case claim == ports.ClaimBusy:
		log.Info("repeat of a message another gateway took: waiting for it to answer, or to stop without answering", "key", keyKind(repeat))
		return s.wait(ctx, log, s.start(msg, log, keys, repeat))
	case !first:
		log.Warn("message taken over: the gateway that took it stopped before answering it", "key", keyKind(repeat))
		keys = allKeys(msg)
	}
	if text, ok := notice(msg); ok {
		logNotice(log, msg)
		s.markLater(log, msg.MessageSid, keys)
		return textReply(text), OutcomeUnsupported, nil
	}
	return s.wait(ctx, log, s.start(msg, log, keys, ""))
}

// wait waits for j's answer, for at most the inline timeout or until ctx
// is done, and makes Handle's result of it.
func (s *MessagesService) wait(ctx context.Context, log *slog.Logger, j *job) (ports.Reply, Outcome, error) {
	timer := time.NewTimer(s.inlineTimeout)
	defer timer.Stop()
	select {
	case parts := <-j.answer:
		if parts == nil {
			log.Info("answer too long for an inline reply: it is sent through the Messages API")
			return ports.Reply{}, OutcomeLater, nil
		}
		return ports.Reply{Messages: parts}, OutcomeInline, nil
	case <-j.duplicate:
		log.Info("duplicate delivery ignored")
		return ports.Reply{}, OutcomeDuplicate, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	close(j.gaveUp)
	if j.watch != "" && !j.taken.Load() {
		log.Info("repeat still waiting for the gateway that took the message: it is answered later if that gateway stopped")
		return ports.Reply{}, OutcomeLater, nil
	}
	log.Info("answer not ready in time: it will be sent later")
	return ports.Reply{}, OutcomeLater, nil
}

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

// keyKind names the kind of a recorded key, for logs ("sid" or "idem"),
// without the idempotency token itself.
func keyKind(key string) string {
	kind, _, _ := strings.Cut(key, ":")
	return kind
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

// firstSeen records the delivery, owned by this instance, under its
// MessageSid and, when Twilio sent one, its idempotency token, and reports
// whether neither was seen before. The MessageSid is always recorded so
// that a retry that lacks the header is still caught; the token catches a
// retry whatever else it carries. The keys are namespaced so that the two
// kinds never collide. It also returns the keys it recorded as new,
// whatever the outcome (a delivery new by its MessageSid may be a
// duplicate by its token): the caller marks them Delivered once the
// delivery is answered; and, for a repeat, the key already recorded.
func (s *MessagesService) firstSeen(ctx context.Context, msg ports.InboundMessage) (first bool, recorded []string, repeat string, err error) {
	owner := s.instance.ID()
	sid := sidPrefix + msg.MessageSid
	first, err = s.store.FirstSeen(ctx, sid, owner)
	if err != nil || !first {
		return false, nil, sid, err
	}
	recorded = []string{sid}
	if msg.IdempotencyKey == "" {
		return true, recorded, "", nil
	}
	idem := idemPrefix + msg.IdempotencyKey
	first, err = s.store.FirstSeen(ctx, idem, owner)
	switch {
	case err != nil:
	case first:
		recorded = append(recorded, idem)
	default:
		repeat = idem
	}
	return first, recorded, repeat, err
}

// allKeys are the keys msg's delivery may be recorded under. A delivery
// taken over marks all of them: those the stopped gateway recorded, and
// those this one did (Delivered of a key never recorded does nothing).
func allKeys(msg ports.InboundMessage) []string {
	keys := []string{sidPrefix + msg.MessageSid}
	if msg.IdempotencyKey != "" {
		keys = append(keys, idemPrefix+msg.IdempotencyKey)
	}
	return keys
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

// start starts msg's goroutine, which untracks msg when it is done, and
// queues msg behind the user's previous message in this process; a job
// that watches a repeat (watch set) is queued only once it took the
// delivery over. The caller must hold a count in s.wg and have tracked
// msg.
func (s *MessagesService) start(msg ports.InboundMessage, log *slog.Logger, keys []string, watch string) *job {
	j := &job{
		msg:       msg,
		log:       log,
		keys:      keys,
		done:      make(chan struct{}),
		answer:    make(chan []string),
		gaveUp:    make(chan struct{}),
		watch:     watch,
		duplicate: make(chan struct{}),
	}
	if watch == "" {
		s.enqueue(j)
	}
	s.wg.Go(func() { s.run(j) })
	return j
}

// enqueue puts j behind the user's previous message in this process.
func (s *MessagesService) enqueue(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.prev = s.last[j.msg.From]
	s.last[j.msg.From] = j.done
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
	if j.watch != "" {
		if !s.await(ctx, j) {
			close(j.duplicate)
			s.markDelivered(j.log, j.keys)
			return
		}
		s.enqueue(j)
		if text, ok := notice(j.msg); ok {
			logNotice(j.log, j.msg)
			if s.deliver(ctx, j, []string{text}) {
				s.markDelivered(j.log, j.keys)
			}
			return
		}
	}
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

// await looks at the delivery j watches every watchEvery, for as long as
// this instance's lease ttl, and takes it over if its owner stops
// meanwhile without answering it. It reports whether j took it (j.keys
// are then all the delivery's keys); it gives up when the delivery is
// answered (or reported), when its owner kept its lease alive all that
// time, or when ctx ends. A failing store is retried until then.
func (s *MessagesService) await(ctx context.Context, j *job) bool {
	deadline := time.Now().Add(s.instance.TTL() + s.watchEvery)
	t := time.NewTimer(s.watchEvery)
	defer t.Stop()
	failed := false // a store failure is logged once
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		claim, err := s.takeOver(ctx, j.watch)
		switch {
		case err != nil && ctx.Err() != nil:
			return false
		case err != nil && !failed:
			j.log.Warn("could not look at a repeated message another gateway took: trying again", "err", err)
			failed = true
		case err != nil:
		case claim == ports.ClaimTaken:
			j.log.Warn("message taken over: the gateway that took it stopped before answering it", "key", keyKind(j.watch))
			j.keys = allKeys(j.msg)
			j.taken.Store(true)
			return true
		case claim != ports.ClaimBusy:
			return false
		}
		if time.Now().After(deadline) {
			j.log.Info("the gateway that took this message is alive: it answers it")
			return false
		}
		t.Reset(s.watchEvery)
	}
}

// takeOver takes over the delivery recorded under key if its owner
// stopped (ThreadStore.TakeOver). While this instance does not hold its
// lease (at start, before the store answered; or after it lapsed) it
// takes nothing and reports the delivery busy: what it took would count as
// unowned, and another gateway could take it over in turn.
func (s *MessagesService) takeOver(ctx context.Context, key string) (ports.Claim, error) {
	if !s.instance.Held() {
		return ports.ClaimBusy, nil
	}
	return s.store.TakeOver(ctx, key, s.instance.ID())
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
	text, err := s.reply(ctx, thread, j.msg.Body)
	if errors.Is(err, ports.ErrNotFound) && ctx.Err() == nil {
		j.log.Warn("the assistant no longer knows the user's thread: starting a new one", "thread", thread)
		thread, err = s.replaceThread(ctx, j.msg.From, thread)
		if err == nil {
			text, err = s.reply(ctx, thread, j.msg.Body)
		}
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

// reply asks the assistant for its answer to text on thread, and tells
// the hook.
func (s *MessagesService) reply(ctx context.Context, thread, text string) (string, error) {
	start := time.Now()
	answer, err := s.assistant.Reply(ctx, thread, text)
	if s.hooks.AssistantReplied != nil {
		s.hooks.AssistantReplied(time.Since(start), err)
	}
	return answer, err
}

// replaceThread gives user a new thread in place of old, which the
// assistant no longer knows, and returns the user's thread: the new one,
// or the one a concurrent caller (in any process) replaced old with first.
func (s *MessagesService) replaceThread(ctx context.Context, user, old string) (string, error) {
	id, err := s.assistant.NewThread(ctx)
	if err != nil {
		return "", err
	}
	return s.store.ReplaceThread(ctx, user, old, id)
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
// them through the MessageSender in order, PartInterval apart (Handle is
// then told to answer the webhook with nothing, so that all parts go one
// way). A part that cannot be sent is logged with what remains
// undelivered; the later parts are not sent, so that the user never
// receives an answer with a hole. The sender retries what Twilio did not
// take (rate limited, unreachable); a send that failed otherwise is not
// retried: when its outcome is unknown (ports.ErrOutcomeUnknown) the
// message may have gone out, and a repeated answer is worse than a logged
// one. That case is logged as such, not as an answer not delivered.
//
// deliver reports whether the delivery is done with: the answer handed
// over or sent, or a send failed or ended unknown (logged here with the
// MessageSid, so that marking the delivery answered spares the log a
// second, misleading "the gateway stopped" report). It reports false when
// ctx ended first.
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
	var sent time.Time
	for i, p := range parts {
		if i > 0 && s.partInterval > 0 {
			select {
			case <-time.After(time.Until(sent.Add(s.partInterval))):
			case <-ctx.Done():
				s.dropped(j, chars(parts[i:]), ctx.Err())
				return false
			}
		}
		sent = time.Now()
		_, err := s.sender.Send(ctx, ports.OutboundMessage{To: j.msg.From, From: j.msg.To, Body: p})
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			s.dropped(j, chars(parts[i:]), err)
			return false
		case errors.Is(err, ports.ErrOutcomeUnknown):
			j.log.Error("answer may or may not have been delivered: the send's outcome is unknown",
				"outcome", "unknown", "part", i+1, "parts", len(parts),
				"unknown_chars", chars(parts[i:i+1]), "undelivered_chars", chars(parts[i+1:]), "err", err)
		default:
			j.log.Error("answer not delivered: send failed",
				"outcome", "failed", "part", i+1, "parts", len(parts), "undelivered_chars", chars(parts[i:]), "err", err)
		}
		return true
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
// stop, and returns an error wrapping ctx.Err(). It then releases the
// service's own Instance, if it made one, so that another gateway may take
// over at once what it left unanswered. No goroutine of the service
// outlives Shutdown. Safe to call more than once and concurrently with
// Handle.
func (s *MessagesService) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.stopOnce.Do(func() { close(s.stopSweep) })
	defer s.cancel()
	err := drain(ctx, &s.wg, s.cancel)
	if s.ownInstance {
		_ = s.instance.Shutdown(ctx) // never fails (a failed release is logged)
	}
	if err != nil {
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
