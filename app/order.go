package app

import (
	"log/slog"
	"sync/atomic"

	"github.com/convgateway/gateway/ports"
)

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
	unlock, err := s.locks.LockUser(ctx, j.msg.From)
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
