package app

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPlaybackLead is how far ahead of playback a full duplex model's
// audio is handed to the caller (CallsDeps.PlaybackLead): enough to ride
// out the jitter of a network and of the provider's playback reports,
// short enough that the caller stops hearing the assistant within it when
// the model stops talking over the caller.
const DefaultPlaybackLead = 300 * time.Millisecond

// player paces a full duplex model's audio (ports.InterruptedByModel): the
// owner pushes every chunk as it arrives; run hands chunks to the caller
// while less than lead is handed and not played, and waits for playback
// reports (wake) otherwise. Such a model stops talking by itself when the
// caller talks over it, but what was handed to the caller keeps playing:
// holding the rest back keeps that to the lead. withdraw drops what is
// held when the caller takes the turn.
type player struct {
	c     *call
	lead  int64 // ms
	wakec chan struct{}

	// playMu is held by run around taking a chunk and handing it over,
	// and by withdraw around dropping the held chunks and clearing the
	// caller's playback, so that no chunk taken before a withdraw is
	// handed after its clear.
	playMu sync.Mutex
	mu     sync.Mutex // guards held, heldMs and handed
	held   []chunk
	heldMs int64
	handed int64 // ms handed to the caller

	frames  atomic.Int64 // chunks handed
	dropped atomic.Int64 // chunks withdrawn
}

type chunk struct {
	audio []byte
	ms    int64
}

func newPlayer(c *call, lead time.Duration) *player {
	if lead <= 0 {
		lead = DefaultPlaybackLead
	}
	return &player{c: c, lead: lead.Milliseconds(), wakec: make(chan struct{}, 1)}
}

// push holds a copy of audio (ms long) for playback after what is held.
// The owner calls it.
func (p *player) push(audio []byte, ms int64) {
	p.mu.Lock()
	p.held = append(p.held, chunk{audio: append([]byte(nil), audio...), ms: ms})
	p.heldMs += ms
	p.mu.Unlock()
	p.wake()
}

// wake tells run that playback moved or audio arrived. It never blocks.
func (p *player) wake() {
	select {
	case p.wakec <- struct{}{}:
	default:
	}
}

// run hands held audio to the caller, lead ahead of playback, until ctx
// is done or a write fails.
func (p *player) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wakec:
		}
		for {
			done, err := p.handNext(ctx)
			if err != nil {
				return err
			}
			if done {
				break
			}
		}
	}
}

// handNext hands the next held chunk to the caller if the lead allows, and
// reports true when there is nothing more to hand for now.
func (p *player) handNext(ctx context.Context) (bool, error) {
	p.playMu.Lock()
	defer p.playMu.Unlock()
	p.mu.Lock()
	if len(p.held) == 0 || p.handed-p.c.played.Load() >= p.lead {
		p.mu.Unlock()
		return true, nil
	}
	next := p.held[0]
	p.held[0] = chunk{}
	p.held = p.held[1:]
	p.heldMs -= next.ms
	p.handed += next.ms
	p.mu.Unlock()

	p.c.writing.Add(1)
	err := p.c.ch.Play(context.Background(), next.audio) // see call: closeBoth ends a blocked write
	p.c.writing.Add(1)
	if err != nil {
		return true, callerWriteEnding(ctx, err)
	}
	p.frames.Add(1)
	p.c.handedMs.Add(next.ms)
	return false, nil
}

// holding is how much audio the player holds back, in ms.
func (p *player) holding() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.heldMs
}

// withdraw drops the held audio and calls apply with how much it was,
// with no chunk handed to the caller meanwhile. The owner calls it.
func (p *player) withdraw(apply func(heldMs int64) error) error {
	p.playMu.Lock()
	defer p.playMu.Unlock()
	p.mu.Lock()
	heldMs := p.heldMs
	p.dropped.Add(int64(len(p.held)))
	clear(p.held)
	p.held, p.heldMs = p.held[:0], 0
	p.mu.Unlock()
	return apply(heldMs)
}

// out is how many chunks the player handed to the caller, and how many it
// withdrew.
func (p *player) out() (handed, withdrawn int) {
	return int(p.frames.Load()), int(p.dropped.Load())
}
