package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/mulaw"
)

// frameBytes is one 20 ms frame of 8 kHz mu-law, what Twilio sends.
const frameBytes = 160

// call places a call and reports it.
func call(ctx context.Context, o options, client *http.Client, stdout io.Writer) error {
	var audio []byte
	var spoken string
	if o.wav != "" {
		var err error
		if audio, spoken, err = loadWAV(o.wav); err != nil {
			return err
		}
	}
	callSid := o.callSid
	if callSid == "" {
		callSid = sid("CA")
	}

	form := url.Values{
		"CallSid": {callSid}, "AccountSid": {o.account}, "From": {o.from}, "To": {o.to},
		"CallStatus": {"ringing"}, "Direction": {"inbound"}, "ApiVersion": {"2010-04-01"},
	}
	fmt.Fprintf(stdout, "POST %s/incoming-call (signed for %s/incoming-call): CallSid %s, From %s, To %s\n",
		o.url, o.publicURL, callSid, o.from, o.to)
	body, took, err := post(ctx, client, o, "/incoming-call", form, nil)
	if err != nil {
		return err
	}
	ans, err := mediasim.ParseAnswer(body)
	if err != nil {
		return fmt.Errorf("POST %s/incoming-call answered 200 with something that is not TwiML (%v): %.300s", o.url, err, body)
	}
	switch {
	case ans.Reject:
		return fmt.Errorf("the gateway rejected the call (<Reject/>): %s is not on its ALLOWED_NUMBERS (pass --from with an allowed number)", o.from)
	case ans.StreamURL == "":
		return fmt.Errorf("the gateway did not connect the call to a media stream: its TwiML was %s %q (its log says why)",
			strings.Join(ans.Verbs, ", "), ans.Say)
	}
	fmt.Fprintf(stdout, "200 after %s: <Connect><Stream url=%q> with %s; then %s\n",
		dur(took), ans.StreamURL, describeParams(ans.Params), strings.Join(ans.Verbs[1:], ", "))

	caller, err := mediasim.Dial(ctx, mediasim.Options{
		URL: ans.StreamURL, Signature: mediasim.StreamSignature(o.authToken, ans.StreamURL), HTTPClient: client,
	})
	if err != nil {
		if strings.Contains(err.Error(), "but got 403") {
			return fmt.Errorf("the gateway refused the media stream's x-twilio-signature (403) at %s: "+
				"the auth token or the gateway's PUBLIC_URL (which the stream URL comes from) does not match", ans.StreamURL)
		}
		return explain("media stream "+ans.StreamURL, err)
	}
	defer caller.Close()
	if err := caller.Start(ctx, ports.CallInfo{CallID: callSid, Params: ans.Params}); err != nil {
		return explain("media stream "+ans.StreamURL, err)
	}
	started := time.Now()
	fmt.Fprintf(stdout, "media stream open (upgrade signed); start sent with the stream parameters\n")
	if spoken != "" {
		fmt.Fprintf(stdout, "saying %s\n", spoken)
	}

	c := &callRun{o: o, caller: caller, started: started, audio: audio}
	stopProgress := c.reportProgress(stdout)
	end := c.talk(ctx)
	stopProgress()

	hungUp := false
	if !isDone(caller) {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := caller.HangUp(stopCtx)
		cancel()
		hungUp = err == nil
	}
	select { // let the gateway's close handshake and the last echoes finish
	case <-caller.Done():
	case <-time.After(2 * time.Second):
	}
	if hungUp {
		end.why += "; hung up (stop)"
	}
	fmt.Fprintf(stdout, "call ended after %s: %s\n", dur(time.Since(started)), end.why)
	c.summary(stdout)

	if o.record != "" {
		played := caller.Played()
		if err := writeWAV(o.record, played); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  recording   %s (%s of what the caller heard)\n", o.record, dur(audioTime(len(played))))
	}
	return end.err
}

// describeParams lists stream parameters without their values: the token
// is a single-use secret.
func describeParams(params map[string]string) string {
	if len(params) == 0 {
		return "no <Parameter> (the gateway will refuse the stream: it needs its token)"
	}
	var names []string
	for name, v := range params {
		names = append(names, fmt.Sprintf("%s (%d chars)", name, len(v)))
	}
	slices.Sort(names)
	return "<Parameter> " + strings.Join(names, ", ")
}

// loadWAV reads a WAV file as 8 kHz mono mu-law and describes it.
func loadWAV(path string) ([]byte, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("--wav: %w", err)
	}
	defer f.Close()
	w, err := mulaw.ReadWAV(f)
	if err != nil {
		return nil, "", fmt.Errorf("--wav %s: %w", path, err)
	}
	audio, err := w.Mulaw()
	if err != nil {
		return nil, "", fmt.Errorf("--wav %s: %w", path, err)
	}
	how := "as it is"
	if w.Format != mulaw.FormatMulaw || w.SampleRate != mulaw.Rate || w.Channels != 1 {
		how = "converted to 8 kHz mono mu-law"
	}
	return audio, fmt.Sprintf("%s: %s of %s, %s", path, dur(audioTime(len(audio))), w, how), nil
}

func writeWAV(path string, audio []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--record: %w", err)
	}
	err = mulaw.WriteWAV(f, audio)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--record: %w", err)
	}
	return nil
}

// audioTime is how long n bytes of 8 kHz mu-law play.
func audioTime(n int) time.Duration { return time.Duration(n) * time.Second / mulaw.Rate }

func isDone(c *mediasim.Caller) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// callRun is a call in progress.
type callRun struct {
	o       options
	caller  *mediasim.Caller
	started time.Time
	audio   []byte // what the caller says

	mu   sync.Mutex
	sent int // frames sent
}

// ending is why a call ended, and the error to return for it.
type ending struct {
	why string
	err error
}

// talk streams the caller's audio, then silence, in real time (20 ms
// frames, as Twilio does for the whole call) until the call should end:
// --duration reached; or, without one, the assistant has answered and
// been quiet for --linger, or --wait has passed since the audio ended; or
// ctx was cancelled (Ctrl-C); or the gateway closed the stream.
func (c *callRun) talk(ctx context.Context) ending {
	quiet := mulaw.Quiet(20)
	pos := 0
	var audioEnd, lastChange time.Time
	lastSeen := -1
	next := time.Now()
	pace := time.NewTimer(0)
	defer pace.Stop()
	<-pace.C
	for n := 0; ; n++ {
		if isDone(c.caller) {
			return c.closedByGateway()
		}
		if ctx.Err() != nil {
			return ending{why: "interrupted"}
		}
		now := time.Now()
		if c.o.duration > 0 && now.Sub(c.started) >= c.o.duration {
			return ending{why: fmt.Sprintf("--duration %s reached", c.o.duration)}
		}
		frame := quiet
		if pos < len(c.audio) {
			frame = c.audio[pos:min(pos+frameBytes, len(c.audio))]
			pos += len(frame)
		} else if audioEnd.IsZero() {
			audioEnd = now
		}
		if c.o.duration == 0 && !audioEnd.IsZero() && n%5 == 0 {
			// The call has said its piece: wait for the answer, looking
			// every 100 ms.
			s := stats(c.caller)
			if seen := s.mediaFrames + s.played + s.flushed; seen != lastSeen {
				lastSeen, lastChange = seen, now
			}
			switch {
			case s.mediaFrames > 0 && s.idle() && now.Sub(lastChange) >= c.o.linger:
				return ending{why: fmt.Sprintf("the assistant answered and was quiet for %s", c.o.linger)}
			case now.Sub(audioEnd) >= c.o.wait && s.mediaFrames == 0:
				return ending{why: fmt.Sprintf("no answer within --wait %s", c.o.wait),
					err: fmt.Errorf("the assistant sent no audio within %s after the caller's audio: see the gateway's log (OpenAI key, Realtime model, turn detection)", c.o.wait)}
			case now.Sub(audioEnd) >= c.o.wait:
				return ending{why: fmt.Sprintf("--wait %s passed after the caller's audio", c.o.wait)}
			}
		}
		if err := c.caller.Speak(ctx, frame, false); err != nil {
			if isDone(c.caller) {
				return c.closedByGateway()
			}
			if ctx.Err() != nil {
				return ending{why: "interrupted"}
			}
			return ending{why: "the media stream failed", err: fmt.Errorf("media stream: %w", err)}
		}
		c.mu.Lock()
		c.sent++
		c.mu.Unlock()
		// Frame n goes out n*20 ms after the first: real time without
		// drift, whatever each frame's own work costs.
		next = next.Add(audioTime(len(frame)))
		pace.Reset(time.Until(next))
		select {
		case <-pace.C:
		case <-ctx.Done():
		case <-c.caller.Done():
		}
	}
}

// closedByGateway explains a stream the gateway closed.
func (c *callRun) closedByGateway() ending {
	closed, code := c.caller.Closed()
	var why string
	switch {
	case !closed:
		why = "the connection dropped without a close frame"
	case code == 1008:
		why = "the gateway refused the stream (1008 policy violation): the token in the start event was missing, wrong, expired or already used"
	case code == 1000:
		why = "the gateway ended the call (1000 normal closure): its log says why (the model's session ended?)"
	case code == 1001:
		why = "the gateway is going away (1001): it is shutting down"
	case code == 1011:
		why = "the gateway ended the call on an internal error (1011): see its log"
	default:
		why = fmt.Sprintf("the gateway closed the stream with code %d", code)
	}
	return ending{why: why, err: errors.New(why)}
}

// callStats is what the caller has seen so far.
type callStats struct {
	mediaFrames, audioBytes int // media frames received and their audio
	marksSent               int // marks the gateway sent
	played, flushed         int // marks echoed
	clears                  int
	playedBytes             int
}

// idle reports whether everything received has played (or been flushed).
func (s callStats) idle() bool { return s.marksSent == s.played+s.flushed }

func stats(c *mediasim.Caller) callStats {
	var s callStats
	for _, f := range c.Frames() {
		switch f.Event {
		case "media":
			s.mediaFrames++
			s.audioBytes += decodedLen(f.Audio)
		case "mark":
			s.marksSent++
		}
	}
	for _, m := range c.Marks() {
		if m.Flushed {
			s.flushed++
		} else {
			s.played++
		}
	}
	s.clears = len(c.Clears())
	s.playedBytes = len(c.Played())
	return s
}

func decodedLen(audio []byte) int {
	n := len(audio) / 4 * 3
	if k := len(audio); k > 0 && audio[k-1] == '=' {
		n--
		if k > 1 && audio[k-2] == '=' {
			n--
		}
	}
	return n
}

// reportProgress prints a progress line every --progress until the
// returned function is called (which waits for the printer).
func (c *callRun) reportProgress(stdout io.Writer) (stop func()) {
	if c.o.progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.o.progress)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				c.mu.Lock()
				sent := c.sent
				c.mu.Unlock()
				s := stats(c.caller)
				fmt.Fprintf(stdout, "  [%6.1fs] sent %s (%d frames)  received %s  marks %d played / %d flushed  clears %d\n",
					time.Since(c.started).Seconds(), dur(audioTime(sent*frameBytes)), sent,
					dur(audioTime(s.audioBytes)), s.played, s.flushed, s.clears)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// summary prints what the caller sent, received, played and was told.
func (c *callRun) summary(stdout io.Writer) {
	c.mu.Lock()
	sent := c.sent
	c.mu.Unlock()
	s := stats(c.caller)
	said := min(len(c.audio), sent*frameBytes)
	fmt.Fprintf(stdout, "  sent        %s of caller audio in %d frames (%s from --wav, then silence)\n",
		dur(audioTime(sent*frameBytes)), sent, dur(audioTime(said)))
	if fa, ok := c.caller.FirstAudio(); ok {
		fmt.Fprintf(stdout, "  first audio %s after the stream started\n", dur(fa))
	} else {
		fmt.Fprintf(stdout, "  first audio none: the assistant sent no audio\n")
	}
	fmt.Fprintf(stdout, "  received    %s of assistant audio in %d media frames; %s played\n",
		dur(audioTime(s.audioBytes)), s.mediaFrames, dur(audioTime(s.playedBytes)))
	fmt.Fprintf(stdout, "  marks       %d sent by the gateway: %d played, %d flushed by a clear\n", s.marksSent, s.played, s.flushed)
	switch s.clears {
	case 0:
		fmt.Fprintf(stdout, "  clears      0\n")
	default:
		fmt.Fprintf(stdout, "  clears      %d (barge-in: the gateway cut the assistant off when the caller spoke over it)\n", s.clears)
	}
}
