package app

import (
	"context"
	"time"

	"github.com/convgateway/gateway/domain"
	"github.com/convgateway/gateway/ports"
)

// own reads the speech session until it ends, applying what the caller
// side reported before each event, then the event. When the assistant
// speaks first, it asks for the greeting before anything else.
func (c *call) own(ctx context.Context) error {
	if c.svc.d.AISpeaksFirst {
		if err := c.sess.Respond(ctx, c.svc.d.Greeting); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return modelEnding("model_failed", err)
		}
	}
	for {
		ev, err := c.sess.Recv(context.Background()) // see call: closeBoth ends it
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return modelEnding("model_failed", err)
		}
		c.applyCaller()
		if err := c.onModel(ctx, ev); err != nil {
			return err
		}
		if h := c.svc.testHookModelEvent; h != nil {
			h(ev)
		}
	}
}

// onModel applies one speech event. It returns an ending when a side can
// no longer be written to.
func (c *call) onModel(ctx context.Context, ev ports.SpeechEvent) error {
	switch ev.Type {
	case ports.SpeechAudio:
		return c.onAudio(ctx, ev)
	case ports.SpeechUtteranceDone:
		c.conv.UtteranceDone(ev.Utterance)
	case ports.SpeechToolCall:
		c.tools.onCall(ev.Tool)
	case ports.SpeechCallerStarted:
		c.tools.callerSpoke()
		if c.mode == ports.InterruptedByGateway {
			in, cut := c.conv.CallerStartedSpeaking(ev.Utterance)
			return c.interrupted(ctx, in, cut)
		}
	case ports.SpeechCallerText:
		c.tools.callerSpoke()
		c.conv.CallerSaid(ev.Utterance, ev.Text, ev.Final)
		if c.mode == ports.InterruptedByModel {
			return c.talkedOver(ctx)
		}
	case ports.SpeechAssistantText:
		c.conv.AssistantSaid(ev.Utterance, ev.Text, ev.Final)
	case ports.SpeechUsage:
		c.sum.Usage = c.sum.Usage.Add(ev.Usage)
	case ports.SpeechError:
		c.sum.ModelErrors++
		code := ev.Err.Code
		if code == "" {
			code = ev.Err.Type
		}
		c.log.Warn("model reported an error", "code", code, "type", ev.Err.Type, "message", ev.Err.Message, "fatal", ev.Err.Fatal)
		if h := c.svc.d.Hooks.ModelError; h != nil {
			h(code)
		}
	}
	return nil
}

// onAudio relays one chunk of assistant audio to the caller, unless the
// caller interrupted its utterance: at once when the model leaves
// interruptions to the gateway, through the player otherwise. The chunk
// is accounted in the caller's format, as the channel reports playback.
func (c *call) onAudio(ctx context.Context, ev ports.SpeechEvent) error {
	audio := ev.Audio
	if c.toCaller != nil {
		var err error
		if c.outBuf, err = c.toCaller.Transcode(c.outBuf[:0], audio); err != nil {
			c.sum.FramesDropped++
			c.log.Debug("assistant audio dropped: not convertible", "err", err)
			return nil
		}
		audio = c.outBuf
	}
	ms := c.format.Millis(decodedLen(audio))
	if !c.conv.AssistantAudio(ev.Utterance, ms) {
		c.sum.FramesDropped++
		return nil
	}
	if ms == 0 {
		return nil // an empty chunk: nothing to play
	}
	if c.svc.d.Tools.Control != nil { // end_call waits for the model to be quiet
		c.lastAudio.Store(time.Now().UnixNano())
	}
	if c.sum.FirstAudio == 0 {
		c.sum.FirstAudio = time.Since(c.started)
		if h := c.svc.d.Hooks.FirstAudio; h != nil {
			h(c.sum.FirstAudio)
		}
	}
	if c.player != nil {
		c.player.push(audio, int64(ms))
		return nil
	}
	c.writing.Add(1)
	err := c.ch.Play(context.Background(), audio) // see call: closeBoth ends a blocked write
	c.writing.Add(1)
	if err != nil {
		return callerWriteEnding(ctx, err)
	}
	c.handedMs.Add(int64(ms))
	c.sum.FramesOut++
	return nil
}

// interrupted applies a barge-in the conversation decided (cut): the
// caller's playback is cleared at once and the model is told how much of
// the utterance the caller heard. No cancel is sent: a model that leaves
// interruptions to the gateway stops its own answer when it detects speech
// (OpenAI Realtime with server or semantic VAD), so a cancel would race
// with it; the conversation refuses any audio of the cut utterances that
// still arrives.
func (c *call) interrupted(ctx context.Context, in domain.Interruption, cut bool) error {
	if !cut {
		return nil
	}
	c.writing.Add(1)
	err := c.ch.Clear(ctx)
	c.writing.Add(1)
	if err != nil {
		return callerWriteEnding(ctx, err)
	}
	if err := c.sess.Heard(ctx, in.Utterance, in.HeardMs); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return modelEnding("model_failed", err)
	}
	c.log.Info("caller interrupted the assistant", "utterance", in.Utterance, "heard_ms", in.HeardMs)
	if h := c.svc.d.Hooks.BargeIn; h != nil {
		h()
	}
	return nil
}

// talkedOver decides a barge-in over a full duplex model, which stops
// talking by itself and says nothing of the caller's speech but its
// words: when the caller's words so far take the turn (more than a
// backchannel such as "mm-hmm") while the assistant's audio is held or
// playing, the held audio is withdrawn and the playback cleared.
func (c *call) talkedOver(ctx context.Context) error {
	if !c.conv.Outstanding() || !domain.TakesTurn(c.conv.CallerText()) {
		return nil
	}
	return c.player.withdraw(func(heldMs int64) error {
		c.conv.Withdraw(heldMs)
		in, cut := c.conv.CallerTookTurn()
		if !cut {
			return nil // everything handed has played: nothing to clear
		}
		c.writing.Add(1)
		err := c.ch.Clear(ctx)
		c.writing.Add(1)
		if err != nil {
			return callerWriteEnding(ctx, err)
		}
		c.log.Info("caller interrupted the assistant", "utterance", in.Utterance, "heard_ms", in.HeardMs)
		if h := c.svc.d.Hooks.BargeIn; h != nil {
			h()
		}
		return nil
	})
}
