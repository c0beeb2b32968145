package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/convgateway/gateway/ports"
)

// Defaults for MessagesDeps.
const (
	// DefaultInlineTimeout leaves a margin under Twilio's 15-second webhook
	// limit.
	DefaultInlineTimeout = 10 * time.Second
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
	// Threads keeps each user's thread. Required.
	Threads ports.ThreadStore
	// Ledger records the deliveries the service takes and answers; it
	// keeps the Instance's lease too when Instance is nil. Required.
	Ledger ports.DeliveryLedger
	// Locks order the work on each user's messages. Required.
	Locks     ports.UserLocks
	Assistant ports.ChatAssistant // required
	// Sender sends the answers that do not go inline. Its Limits say how
	// long one message may be (a longer answer is split,
	// domain.SplitMessage) and how much an inline Reply may carry (an
	// answer that needs more is sent through Sender, all of it, so that
	// its parts keep their order). Required.
	Sender ports.MessageSender
	Logger *slog.Logger // nil discards logs
	// Tools are the user's tools and MCP servers the assistant may use
	// (the call tools of Tools are not offered on chats).
	Tools Tools
	// InlineTimeout is how long Handle waits for the answer before it
	// returns an empty Reply and lets the answer go out through Sender.
	// Zero means DefaultInlineTimeout.
	InlineTimeout time.Duration
	// AbandonedAfter is how long after a delivery was taken the service
	// reports it as never answered, when no answer was recorded for it
	// by then (DeliveryLedger.Abandoned). It must be longer than any answer
	// takes, waiting behind the user's earlier messages included: an
	// answer still on its way in another process after AbandonedAfter is
	// reported all the same. Zero means DefaultAbandonedAfter.
	AbandonedAfter time.Duration
	// AbandonedEvery is how often the service asks the Ledger for such
	// deliveries, the first time shortly after NewMessages. Zero means
	// DefaultAbandonedEvery.
	AbandonedEvery time.Duration
	// PartInterval is the least time between the starts of the sends of
	// two parts of one answer through Sender. Zero means
	// DefaultPartInterval; a negative value sends them back to back.
	PartInterval time.Duration
	// Instance is the process's lease, whose id owns the deliveries the
	// service takes. Nil: the service makes one on Ledger (NewInstance,
	// DefaultLeaseTTL) and shuts it down in Shutdown; a shared one is
	// shut down by its owner, after the service.
	Instance *Instance
	Hooks    MessagesHooks
}

// MessagesService implements ports.Messages: the WhatsApp/SMS use case.
//
// Guarantees, which hold across gateway processes sharing one database
// (its ThreadStore, DeliveryLedger and UserLocks):
//
//   - One reply per delivery: a delivery whose MessageSid or idempotency
//     token was already recorded (DeliveryLedger.FirstSeen) is a repeat
//     (Twilio retries a webhook whose answer it did not get). A repeat is
//     ignored when the delivery was answered, or when this process or another
//     gateway alive (it holds its lease, see Instance) owns it: that one
//     answers it. A repeat of a delivery whose owner stopped before answering
//     it (crashed, killed, or shut down without finishing it) is taken over
//     (DeliveryLedger.TakeOver: by one gateway only) and answered. When the
//     owner's lease is still live, the repeat may have come after a crash
//     faster than the lease's ttl (a restart): the service then looks at the
//     delivery again every tenth of the ttl, for as long as the ttl, and
//     takes it over if its owner's lease expires meanwhile without it being
//     answered; it answers inline when that happens within the inline
//     timeout, else later through the MessageSender. An owner that renews its
//     lease all that time is alive, and the repeat is ignored.
//
//   - One thread per user, and one assistant exchange at a time per user:
//     the work on a message runs under UserLocks.LockUser, from looking up
//     the thread to handing over or sending the last part of the answer, so
//     answers go out in the order the messages took the lock. Within one
//     process messages from one user also take the lock in arrival order.
//
//   - No answer lost silently: a delivery recorded as new is marked answered
//     (DeliveryLedger.Delivered) once its answer or a polite text is handed
//     to the webhook or sent, or once sending it failed or its outcome became
//     unknown (that is logged with the MessageSid already). A goroutine of
//     the service asks the ledger every AbandonedEvery for deliveries taken
//     more than AbandonedAfter ago, never marked, and whose owner's lease has
//     ended (DeliveryLedger.Abandoned: each is returned to one process once)
//     and logs each at error level with its MessageSid: the process that took
//     it died before answering (a crash, a kill, a Shutdown that gave up on
//     it), and no repeat came that another gateway took over. Both keys a
//     delivery may be recorded under, its MessageSid and its idempotency
//     token, are marked; only MessageSid keys are reported, so a delivery is
//     reported at most once and a delivery marked answered never is, even if
//     the process died between marking the two. A crash after an answer was
//     handed over and before it was marked reports an answer that may have
//     gone out: the report errs on the side of saying so; so does a takeover,
//     which may answer a delivery twice. An answer still on its way in a
//     process whose lease is live is not reported (it is logged when it
//     ends).
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
	threads        ports.ThreadStore
	ledger         ports.DeliveryLedger
	locks          ports.UserLocks
	assistant      ports.ChatAssistant
	tools          Tools
	sender         ports.MessageSender
	limits         ports.MessageLimits // the sender's
	log            *slog.Logger
	inlineTimeout  time.Duration
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
// stops those goroutines too. It panics if the Sender's Limits are not all
// positive (the MessageSender contract).
func NewMessages(d MessagesDeps) *MessagesService {
	limits := d.Sender.Limits()
	if limits.MaxChars < 1 || limits.MaxReplyMessages < 1 || limits.MaxReplyBytes < 1 {
		panic(fmt.Sprintf("app: NewMessages: the sender's limits must be positive: %+v", limits))
	}
	if d.InlineTimeout <= 0 {
		d.InlineTimeout = DefaultInlineTimeout
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
		d.Instance = NewInstance(InstanceDeps{Leases: d.Ledger, Logger: d.Logger})
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &MessagesService{
		threads:        d.Threads,
		ledger:         d.Ledger,
		locks:          d.Locks,
		assistant:      d.Assistant,
		tools:          d.Tools,
		sender:         d.Sender,
		limits:         limits,
		log:            d.Logger,
		inlineTimeout:  d.InlineTimeout,
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
