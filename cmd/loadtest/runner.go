package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/test/sim/mediasim"
	"github.com/convgateway/gateway/test/sim/mulaw"
	"github.com/convgateway/gateway/test/sim/realtimesim"
)

// The caller's script, repeated every cycle: it speaks, pauses (the
// assistant answers), speaks again while the answer plays (a barge-in),
// and pauses again (the assistant answers, and the next cycle's speech
// cuts that answer too). The assistant's answer lasts replyMs.
const (
	cycleFrames = 200 // 4 s
	speak1End   = 50  // 0.0-1.0 s: speech
	speak2Start = 100 // 1.0-2.0 s: pause; the answer starts 400 ms in
	speak2End   = 130 // 2.0-2.6 s: speech over the answer
	replyMs     = 2000
)

// voiced reports whether frame seq of the script is speech.
func voiced(seq int) bool {
	f := seq % cycleFrames
	return f < speak1End || (f >= speak2Start && f < speak2End)
}

// sessionRef says which call and path a simulator session serves.
type sessionRef struct{ call, path int }

// runner is one load run.
type runner struct {
	o     options
	out   io.Writer
	dir   string
	clock clock
	sim   *realtimesim.Server
	gw    gateway

	calls    []*callRec
	sessions sync.Map // *realtimesim.Session -> sessionRef
	reply    [][]byte // the assistant's answer, raw mu-law, one frame a chunk
	speech   []byte   // one frame of caller speech
	frames   int      // frames per call

	modelErrors atomic.Int64
	started     atomic.Int64 // calls connected
	ended       atomic.Int64 // calls finished
}

func newRunner(ctx context.Context, o options, out io.Writer) (*runner, error) {
	dir, err := os.MkdirTemp("", "loadtest-")
	if err != nil {
		return nil, err
	}
	r := &runner{o: o, out: out, dir: dir, speech: mulaw.Tone(300, frameMs)}
	r.frames = int(o.duration / (frameMs * time.Millisecond))
	for i := range o.calls {
		r.calls = append(r.calls, newCallRec(i, i < o.twins, r.frames+1))
	}
	raw := mulaw.Tone(440, replyMs)
	for len(raw) >= frameBytes {
		r.reply = append(r.reply, raw[:frameBytes])
		raw = raw[frameBytes:]
	}
	r.sim = realtimesim.New(realtimesim.Options{
		APIKey:    loadAPIKey,
		DropAudio: true,
		Auto:      &realtimesim.Auto{Reply: mulaw.Tone(440, replyMs), Transcript: "An answer.", ChunkEvery: frameMs * time.Millisecond},
		OnAudio:   r.onAudio,
		OnDelta:   r.onDelta,
		OnEvent:   r.onEvent,
	})
	if o.gateway == "" {
		r.gw, err = startInProcess(ctx, r.sim.URL(), dir)
	} else {
		r.gw, err = startProcess(ctx, o.gateway, r.sim.URL(), dir)
	}
	if err != nil {
		r.sim.Close()
		return nil, err
	}
	return r, nil
}

// close stops the gateway and the simulator.
func (r *runner) close() error {
	err := r.gw.Stop()
	r.sim.Close()
	return err
}

// onAudio sees every caller frame the simulator receives: it learns which
// call and path the session serves and stamps the frame's arrival.
func (r *runner) onAudio(s *realtimesim.Session, audio []byte) {
	at := r.clock.now()
	call, path, seq, ok := readIn(audio)
	if !ok || call >= len(r.calls) {
		return
	}
	if _, known := r.sessions.Load(s); !known {
		r.sessions.Store(s, sessionRef{call: call, path: path})
	}
	r.calls[call].inArrived(path, seq, at)
}

// onDelta marks every chunk of the assistant's answers with its response
// and index, and stamps when it is sent.
func (r *runner) onDelta(s *realtimesim.Session, response, index int, chunk []byte) []byte {
	v, ok := r.sessions.Load(s)
	if !ok || index >= len(r.reply) {
		return chunk
	}
	ref := v.(sessionRef)
	raw := make([]byte, frameBytes)
	copy(raw, r.reply[index])
	stampOut(raw, response, index)
	b64 := []byte(base64.StdEncoding.EncodeToString(raw))
	r.calls[ref.call].outSent(ref.path, response, index, r.clock.now())
	return b64
}

func (r *runner) onEvent(event []byte) {
	if bytes.Contains(event, []byte(`"type":"error"`)) {
		r.modelErrors.Add(1)
	}
}

// run places the calls, measures while they all run, and collects the
// figures.
func (r *runner) run(ctx context.Context) (*result, error) {
	res := &result{
		Calls: r.o.calls, Twins: r.o.twins, DurationS: r.o.duration.Seconds(), RampS: r.o.ramp.Seconds(),
		Gateway: r.gw.Describe(), Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
	}
	_, idle, err := r.gw.Usage()
	if err != nil {
		return nil, fmt.Errorf("read the gateway's usage: %w", err)
	}
	fmt.Fprintf(r.out, "loadtest: %d calls of %v (placed over %v), %d with a twin; gateway %s\n",
		r.o.calls, r.o.duration, r.o.ramp, r.o.twins, r.gw.Describe())

	r.clock = clock{t0: time.Now()}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i := range r.calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := r.clock.t0.Add(time.Duration(i) * r.o.ramp / time.Duration(r.o.calls))
			select {
			case <-time.After(time.Until(start)):
			case <-runCtx.Done():
				return
			}
			r.call(runCtx, r.calls[i])
			r.ended.Add(1)
		}()
	}

	// The steady window: every call is up, none has ended.
	win := r.measure(runCtx, res, idle)
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-ctx.Done():
		cancel()
		<-allDone
		return nil, ctx.Err()
	}
	if win != nil {
		return nil, win
	}
	r.collect(res)
	return res, nil
}

// measure waits for the steady window (after the ramp, before the first
// call ends), prints progress, and records the gateway's CPU and memory
// over it.
func (r *runner) measure(ctx context.Context, res *result, idle int64) error {
	winStart := r.clock.t0.Add(r.o.ramp + time.Second)
	winEnd := r.clock.t0.Add(r.o.duration - time.Second)
	if !winEnd.After(winStart) {
		winStart, winEnd = r.clock.t0.Add(r.o.ramp), r.clock.t0.Add(r.o.ramp).Add(time.Second)
	}
	progress := time.NewTicker(max(r.o.progress, time.Second))
	defer progress.Stop()
	sample := time.NewTicker(250 * time.Millisecond)
	defer sample.Stop()
	var cpu0 time.Duration
	var peak int64
	inWindow := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-progress.C:
			if r.o.progress > 0 {
				fmt.Fprintf(r.out, "  +%4.0fs  calls up %d, ended %d\n", time.Since(r.clock.t0).Seconds(), r.started.Load(), r.ended.Load())
			}
		case now := <-sample.C:
			cpu, rss, err := r.gw.Usage()
			if err != nil {
				return fmt.Errorf("read the gateway's usage: %w", err)
			}
			switch {
			case !inWindow && now.After(winStart):
				inWindow, cpu0, peak = true, cpu, rss
			case inWindow && now.After(winEnd):
				minutes := now.Sub(winStart).Minutes()
				res.CPUSecondsPerCallMinute = (cpu - cpu0).Seconds() / (float64(r.o.calls) * minutes)
				res.RSSIdleMiB = mib(idle)
				res.RSSPeakMiB = mib(max(peak, rss))
				res.RSSPerCallKiB = float64(max(peak, rss)-idle) / 1024 / float64(r.o.calls)
				res.WindowS = now.Sub(winStart).Seconds()
				return nil
			case inWindow:
				peak = max(peak, rss)
			}
		}
	}
}

// call runs one call: the voice webhook, the media stream, and the script
// in real time; and its twin, if it has one.
func (r *runner) call(ctx context.Context, rec *callRec) {
	sid := fmt.Sprintf("CA%032x", rec.id)
	fail := func(err error) {
		rec.mu.Lock()
		rec.err = err
		rec.mu.Unlock()
	}
	a, err := mediasim.PlaceCall(ctx, mediasim.CallRequest{
		URL: r.gw.URL() + "/incoming-call", AuthToken: loadAuthToken, CallSid: sid,
		AccountSid: "AC00000000000000000000000000000000", From: "+15550000000", To: "+15559999999",
	})
	if err != nil {
		fail(err)
		return
	}
	caller, err := mediasim.Dial(ctx, mediasim.Options{
		URL: a.StreamURL, Signature: mediasim.StreamSignature(loadAuthToken, a.StreamURL), NoRecord: true,
		OnMedia: func(b64 []byte) {
			if resp, idx, ok := readOut(b64); ok {
				rec.outRecv(pathGateway, resp, idx, r.clock.now())
			}
		},
	})
	if err != nil {
		fail(err)
		return
	}
	defer caller.Close()
	if err := caller.Start(ctx, ports.CallInfo{CallID: sid, Params: a.Params}); err != nil {
		fail(err)
		return
	}
	var twin *direct
	if rec.twin {
		twin, err = dialDirect(ctx, r.sim.URL(), func(b64 []byte) {
			if resp, idx, ok := readOut(b64); ok {
				rec.outRecv(pathDirect, resp, idx, r.clock.now())
			}
		})
		if err != nil {
			fail(err)
			return
		}
		defer twin.close()
	}
	r.started.Add(1)

	frame := make([]byte, frameBytes)
	b64 := make([]byte, base64.StdEncoding.EncodedLen(frameBytes))
	start := time.Now()
	late := 0
	for seq := range r.frames {
		due := start.Add(time.Duration(seq) * frameMs * time.Millisecond)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		} else if wait < -frameMs*time.Millisecond {
			late++
		}
		if voiced(seq) {
			copy(frame, r.speech)
		} else {
			for i := range frame {
				frame[i] = mulaw.Silence
			}
		}
		stampIn(frame, rec.id, pathGateway, seq)
		base64.StdEncoding.Encode(b64, frame)
		rec.inSent(pathGateway, seq, r.clock.now())
		if err := caller.Audio(ctx, int64((seq+1)*frameMs), b64); err != nil {
			fail(fmt.Errorf("send frame %d: %w", seq, err))
			return
		}
		if twin != nil {
			stampIn(frame, rec.id, pathDirect, seq)
			base64.StdEncoding.Encode(b64, frame)
			rec.inSent(pathDirect, seq, r.clock.now())
			if err := twin.append(ctx, b64); err != nil {
				fail(fmt.Errorf("twin: send frame %d: %w", seq, err))
				return
			}
		}
	}
	// Let the last frames arrive before hanging up.
	select {
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
	}
	select {
	case <-caller.Done():
		fail(errors.New("the gateway closed the stream during the call"))
		return
	default:
	}
	rec.mu.Lock()
	rec.held, rec.late = true, late
	rec.mu.Unlock()
	if err := caller.HangUp(ctx); err != nil {
		fail(fmt.Errorf("hang up: %w", err))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
