package app

import (
	"context"

	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

// readCaller reads the telephony channel until it ends. Caller audio is
// appended to the speech session here, chunk by chunk, in order.
func (c *call) readCaller(ctx context.Context) error {
	bg := context.Background() // see call: closeBoth ends a blocked Recv
	for {
		ev, err := c.ch.Recv(bg)
		if err != nil {
			if ctx.Err() != nil {
				return nil // the call ended elsewhere
			}
			return callerEnding(err)
		}
		switch ev.Type {
		case ports.CallAudio:
			c.callerPos.Store(ev.MediaMs)
			audio := ev.Audio
			if c.toModel != nil {
				if c.inBuf, err = c.toModel.Transcode(c.inBuf[:0], audio); err != nil {
					c.skip("audio", len(audio))
					continue
				}
				audio = c.inBuf
			}
			c.appending.Add(1)
			if err := c.sess.AppendAudio(bg, audio); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return modelEnding("model_failed", err)
			}
			c.appending.Add(1)
			c.sum.FramesIn++
		case ports.CallPlayed:
			c.played.Store(ev.PlayedMs)
			if c.player != nil {
				c.player.wake()
			}
			if h := c.svc.testHookCallerEvent; h != nil {
				h(ev)
			}
		case ports.CallKey:
			if !domain.IsKey(ev.Key) {
				c.skip("key press", len(ev.Key))
				continue
			}
			c.keys++
			if c.keys <= domain.MaxDigits { // the summary counts the rest
				if c.svc.d.LogDigits {
					c.log.Info("caller pressed a key", "keys_pressed", c.keys, "digit", ev.Key)
				} else {
					c.log.Info("caller pressed a key", "keys_pressed", c.keys)
				}
			}
			c.enqueue(ev.Key[0])
			if h := c.svc.testHookCallerEvent; h != nil {
				h(ev)
			}
		case ports.CallHungUp:
			return &ending{reason: "caller_hangup", side: sideCaller, normal: true}
		default:
			c.log.Debug("telephony event skipped", "event", ev.Type.String())
		}
	}
}

// skip counts a key press or a chunk of audio that readCaller does not
// use, and logs the first and every tenfold count after it, never its
// content.
func (c *call) skip(kind string, size int) {
	c.skippedCaller++
	if n := c.skippedCaller; n == 1 || n == 10 || n == 100 || n%1000 == 0 {
		c.log.Warn("caller event skipped: not a single key or not convertible audio", "kind", kind, "bytes", size, "skipped", n)
	}
}

// enqueue queues a key press for the owner, unless the queue is full (then
// it is dropped and counted).
func (c *call) enqueue(key byte) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.queue) >= maxCallerQueue {
		c.dropped++
		return
	}
	c.queue = append(c.queue, key)
}

// applyCaller applies the playback progress and the key presses readCaller
// queued, in order. The owner's buffer is swapped with the queue's, so
// nothing is allocated once they have grown.
func (c *call) applyCaller() {
	c.conv.CallerAudio(c.callerPos.Load())
	c.conv.Played(c.played.Load())
	c.qmu.Lock()
	c.queue, c.applying = c.applying[:0], c.queue
	c.qmu.Unlock()
	for _, key := range c.applying {
		c.conv.Digit(string(rune(key)))
	}
}
