package mediasim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/coder/websocket"
)

// read records the gateway's frames and feeds the playback queue. Frames
// the simulator cannot parse are recorded with an empty Event.
func (c *Caller) read(ctx context.Context) {
	defer c.wg.Done()
	defer close(c.done)
	for {
		// A context without a Done channel spares a timer per frame; Close
		// closes the connection, which ends the read.
		_, b, err := c.conn.Read(context.Background())
		if err == nil {
			if payload, ok := fastMedia(b); ok { // the common case, without encoding/json
				c.receiveMedia(payload)
				continue
			}
		}
		if err != nil {
			if code := websocket.CloseStatus(err); code >= 0 && !c.hungUp.Load() {
				c.mu.Lock()
				c.closed, c.closeCode = true, int(code)
				c.mu.Unlock()
			}
			return
		}
		var f outboundFrame
		if json.Unmarshal(b, &f) != nil {
			c.record(Frame{})
			continue
		}
		switch f.Event {
		case "media":
			c.receiveMedia(f.Media.Payload)
		case "mark":
			c.record(Frame{Event: "mark", Mark: f.Mark.Name})
			c.enqueue(queued{mark: f.Mark.Name, isMark: true})
		case "clear":
			c.record(Frame{Event: "clear"})
			c.clear(ctx)
		default:
			c.record(Frame{Event: f.Event})
		}
	}
}

// mediaPrefix and payloadKey are how the gateway writes media frames.
var (
	mediaPrefix = []byte(`{"event":"media",`)
	payloadKey  = []byte(`"payload":"`)
)

// fastMedia returns the payload of a media frame whose payload is plain
// base64 (no escapes), or false for anything else, which the caller then
// decodes with encoding/json.
func fastMedia(b []byte) (string, bool) {
	if !bytes.HasPrefix(b, mediaPrefix) {
		return "", false
	}
	i := bytes.Index(b, payloadKey)
	if i < 0 {
		return "", false
	}
	rest := b[i+len(payloadKey):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 || !bytes.HasPrefix(rest[end:], []byte(`"}}`)) {
		return "", false
	}
	return string(rest[:end]), true
}

func (c *Caller) record(f Frame) {
	if c.opts.NoRecord {
		return
	}
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
}

func (c *Caller) receiveMedia(payload string) {
	if c.opts.OnMedia != nil {
		c.opts.OnMedia([]byte(payload))
	}
	audio, err := base64.StdEncoding.DecodeString(payload)
	c.record(Frame{Event: "media", Audio: []byte(payload)})
	c.mu.Lock()
	if c.firstAudio == 0 && !c.startedAt.IsZero() {
		c.firstAudio = max(c.clock.Now().Sub(c.startedAt), time.Nanosecond)
	}
	c.mu.Unlock()
	if err == nil {
		c.enqueue(queued{audio: audio})
	}
}

func (c *Caller) enqueue(q queued) {
	c.mu.Lock()
	c.queue = append(c.queue, q)
	c.mu.Unlock()
	c.poke()
}

func (c *Caller) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Marks leave the playback queue only under echoMu, and are echoed before
// it is released: the player, a clear and PlayOut each take the marks they
// echo, so echoes go out in the order the marks came, as Twilio's do.

// clear empties the playback queue, keeping the played part of the chunk
// that was playing, and echoes every pending mark at once.
func (c *Caller) clear(ctx context.Context) {
	c.echoMu.Lock()
	defer c.echoMu.Unlock()
	c.mu.Lock()
	now := c.clock.Now()
	c.clears = append(c.clears, now)
	var flushed []string
	for i, q := range c.queue {
		switch {
		case q.isMark:
			flushed = append(flushed, q.mark)
		case i == 0 && !q.started.IsZero():
			n := min(int(now.Sub(q.started)/time.Millisecond)*8, len(q.audio))
			if !c.opts.NoRecord {
				c.played = append(c.played, q.audio[:n]...)
			}
		}
	}
	c.queue = nil
	c.mu.Unlock()
	for _, name := range flushed {
		_ = c.echo(ctx, name, true) // the stream may be ending
	}
	c.poke()
}

// PlayOut plays at once everything queued for playback so far, as though
// its time had come: the audio counts as played and the marks among it are
// echoed, in order. What the gateway sent and the caller has not read yet
// plays at its pace afterwards. It returns the error of an echo that could
// not be sent.
func (c *Caller) PlayOut(ctx context.Context) error {
	c.echoMu.Lock()
	defer c.echoMu.Unlock()
	c.mu.Lock()
	var marks []string
	for _, q := range c.queue {
		switch {
		case q.isMark:
			marks = append(marks, q.mark)
		case !c.opts.NoRecord:
			c.played = append(c.played, q.audio...)
		}
	}
	c.queue = nil
	c.mu.Unlock()
	c.poke()
	for _, name := range marks {
		if err := c.echo(ctx, name, false); err != nil {
			return err
		}
	}
	return nil
}

// play plays the queue at 8 bytes per millisecond on the caller's clock,
// echoing each mark when the audio before it has played.
func (c *Caller) play(ctx context.Context) {
	defer c.wg.Done()
	for {
		c.echoMu.Lock()
		c.mu.Lock()
		var wait time.Duration
		var mark string
		if len(c.queue) > 0 {
			head := &c.queue[0]
			now := c.clock.Now()
			switch {
			case head.isMark:
				mark = head.mark
				c.queue = c.queue[1:]
			case head.started.IsZero():
				head.started = now
				wait = playTime(len(head.audio))
			default:
				wait = head.started.Add(playTime(len(head.audio))).Sub(now)
				if wait <= 0 {
					if !c.opts.NoRecord {
						c.played = append(c.played, head.audio...)
					}
					c.queue = c.queue[1:]
					wait = 0
				}
			}
			if len(c.queue) == 0 {
				c.queue = nil // let the backing array go
			}
		}
		idle := len(c.queue) == 0 && mark == ""
		c.mu.Unlock()
		if mark != "" {
			_ = c.echo(ctx, mark, false) // the stream may be ending
		}
		c.echoMu.Unlock()

		switch {
		case mark != "":
		case idle:
			select {
			case <-c.wake:
			case <-ctx.Done():
				return
			}
		case wait > 0:
			select {
			case <-c.clock.After(wait):
			case <-c.wake: // a clear may have emptied the queue
			case <-ctx.Done():
				return
			}
		}
	}
}

func playTime(bytes int) time.Duration { return time.Duration(bytes) * time.Millisecond / 8 }

// echo sends a mark back to the gateway and records it. The caller holds
// echoMu, which Marks also takes: an echo is in Marks exactly when it is
// on the wire, so a frame sent after seeing it there follows it, and a
// test that saw it arrive finds it there. The echo is recorded even when
// it could not be sent.
func (c *Caller) echo(ctx context.Context, name string, flushed bool) error {
	at := c.clock.Now()
	b := make([]byte, 0, 128)
	b = append(b, `{"event":"mark","sequenceNumber":"`...)
	b = append(b, c.nextSeq()...)
	b = append(b, `","streamSid":`...)
	b = appendJSONString(b, c.sid())
	b = append(b, `,"mark":{"name":`...)
	b = appendJSONString(b, name)
	b = append(b, "}}"...)
	err := c.write(ctx, b)
	if !c.opts.NoRecord {
		c.mu.Lock()
		c.marks = append(c.marks, MarkEcho{Name: name, At: at, Flushed: flushed})
		c.mu.Unlock()
	}
	return err
}
