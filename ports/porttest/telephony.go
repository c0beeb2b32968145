package porttest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/peer"
)

// TelephonyChannel runs the conformance suite of ports.TelephonyChannel.
// newHarness is called once per subtest and returns a channel connected to
// its peer; subtests run in parallel, each with its own harness.
func TelephonyChannel(t *testing.T, newHarness func(t *testing.T) TelephonyHarness) {
	t.Run("Start", func(t *testing.T) {
		t.Parallel()
		h := newTelephony(t, newHarness)
		call := ports.CallInfo{
			CallID: unique("CA"), From: "+15551234567", To: "+15557654321",
			Params: map[string]string{"token": unique("tok")},
		}
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.Start(ctx, call) })
		ev := recvCallType(t, h.Channel, ports.CallStarted)
		assert.Equal(t, call, ev.Call)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("Format", func(t *testing.T) {
		t.Parallel()
		h := newTelephony(t, newHarness)
		f := h.Channel.Format()
		assert.Positive(t, f.BytesPerSample(), "a known encoding: %v", f)
		assert.Contains(t, []int{8000, 16000, 24000}, f.SampleRate)
	})

	t.Run("AudioInOrder", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		const frames = 100
		payload := func(i int) []byte { return fmt.Appendf(nil, "chunk%03df39/fw==", i) } // base64, as audio is
		done := peerAsync(t, func(ctx context.Context) error {
			for i := range frames {
				if err := h.Peer.Audio(ctx, int64(i*20), payload(i)); err != nil {
					return err
				}
			}
			return nil
		})
		for i := range frames {
			ev := recvCallType(t, h.Channel, ports.CallAudio)
			assert.Equal(t, int64(i*20), ev.MediaMs, "frame %d", i)
			assert.Equal(t, payload(i), ev.Audio, "frame %d", i)
		}
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("Key", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.Key(ctx, "5") })
		ev := recvCallType(t, h.Channel, ports.CallKey)
		assert.Equal(t, "5", ev.Key)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("SendsReachPeer", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		audio := []byte("f39/f39/fw==")
		steps := []func(ctx context.Context) error{
			func(ctx context.Context) error { return h.Channel.Play(ctx, audio) },
			h.Channel.Clear,
			func(ctx context.Context) error { return h.Channel.Play(ctx, []byte("AAAA")) },
		}
		for _, step := range steps {
			require.NoError(t, withinErr(t, "send", step))
		}
		copy(audio, "XXXX") // the channel must not keep the caller's buffer
		want := []peer.Outbound{
			{Kind: peer.OutAudio, Audio: []byte("f39/f39/fw==")},
			{Kind: peer.OutClear},
			{Kind: peer.OutAudio, Audio: []byte("AAAA")},
		}
		eventually(t, "sends received", func() bool { return len(h.Peer.Received()) >= len(want) })
		got := h.Peer.Received()
		for i := range got {
			if len(got[i].Audio) == 0 {
				got[i].Audio = nil // a peer may decode "no audio" as empty
			}
		}
		assert.Equal(t, want, got)
	})

	t.Run("SkipsMalformed", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		assert.Zero(t, h.Channel.Skipped(), "nothing skipped yet")
		done := peerAsync(t, func(ctx context.Context) error {
			for range 3 {
				if err := h.Peer.SendMalformed(ctx); err != nil {
					return err
				}
			}
			return h.Peer.Key(ctx, "4")
		})
		assert.Equal(t, "4", recvCallType(t, h.Channel, ports.CallKey).Key, "the stream goes on")
		require.NoError(t, awaitPeer(t, done))
		assert.Equal(t, 3, h.Channel.Skipped())
		require.NoError(t, h.Channel.End(ports.EndCompleted))
		assert.Equal(t, 3, h.Channel.Skipped(), "the count stays after Close")
	})

	t.Run("PlayedReportsProgress", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		f := h.Channel.Format()
		chunk := silence(f, 20) // 20 ms
		for range 3 {
			require.NoError(t, withinErr(t, "Play", func(ctx context.Context) error { return h.Channel.Play(ctx, chunk) }))
		}
		done := peerAsync(t, h.Peer.PlayOut)
		require.NoError(t, awaitPeer(t, done))
		var played int64
		for played < 60 {
			ev := recvCallType(t, h.Channel, ports.CallPlayed)
			assert.GreaterOrEqual(t, ev.PlayedMs, played, "positions never go backwards")
			played = ev.PlayedMs
		}
		assert.Equal(t, int64(60), played, "everything played, and no more")

		// Cleared audio counts as done: the position catches up with Play.
		for range 2 {
			require.NoError(t, withinErr(t, "Play", func(ctx context.Context) error { return h.Channel.Play(ctx, chunk) }))
		}
		require.NoError(t, withinErr(t, "Clear", h.Channel.Clear))
		done = peerAsync(t, h.Peer.PlayOut)
		require.NoError(t, awaitPeer(t, done))
		for played < 100 {
			ev := recvCallType(t, h.Channel, ports.CallPlayed)
			assert.GreaterOrEqual(t, ev.PlayedMs, played, "positions never go backwards")
			played = ev.PlayedMs
		}
		assert.Equal(t, int64(100), played)
	})

	t.Run("HangUpEndsCall", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		done := peerAsync(t, h.Peer.HangUp)
		recvCallType(t, h.Channel, ports.CallHungUp)
		requireCallEnd(t, h.Channel)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("EndCompleted", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		require.NoError(t, h.Channel.End(ports.EndCompleted))
		requirePeerEnded(t, h.Peer, ports.EndCompleted)
		_ = h.Channel.End(ports.EndRefused) // idempotent: the first end stands
		requirePeerEnded(t, h.Peer, ports.EndCompleted)
	})

	t.Run("EndRefused", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		require.NoError(t, h.Channel.End(ports.EndRefused))
		requirePeerEnded(t, h.Peer, ports.EndRefused)
	})

	t.Run("AfterClose", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		require.NoError(t, h.Channel.End(ports.EndCompleted))
		steps := map[string]func(ctx context.Context) error{
			"Play":  func(ctx context.Context) error { return h.Channel.Play(ctx, []byte("AAAA")) },
			"Clear": h.Channel.Clear,
			"Recv":  func(ctx context.Context) error { _, err := h.Channel.Recv(ctx); return err },
		}
		for name, step := range steps {
			assert.ErrorIs(t, withinErr(t, name, step), ports.ErrClosed, "%s after Close", name)
		}
	})

	t.Run("CloseUnblocksRecv", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		errc := make(chan error, 1)
		go func() {
			_, err := h.Channel.Recv(context.Background())
			errc <- err
		}()
		require.NoError(t, h.Channel.End(ports.EndCompleted))
		require.ErrorIs(t, awaitPeer(t, errc), ports.ErrClosed)
	})

	t.Run("RecvHonoursContext", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := h.Channel.Recv(ctx)
			errc <- err
		}()
		cancel()
		require.ErrorIs(t, awaitPeer(t, errc), context.Canceled)

		// An abandoned Recv does not end the stream.
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.Key(ctx, "#") })
		assert.Equal(t, "#", recvCallType(t, h.Channel, ports.CallKey).Key)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("ConcurrentSenders", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		ctx := stepCtx(t)
		const senders, each = 4, 25
		var wg sync.WaitGroup
		for g := range senders {
			wg.Go(func() {
				for i := range each {
					if err := h.Channel.Play(ctx, fmt.Appendf(nil, "g%d-%03d", g, i)); err != nil {
						t.Errorf("Play: %v", err)
						return
					}
				}
			})
		}
		waitGroup(t, "concurrent sends", &wg)
		eventually(t, "all sends received", func() bool { return len(h.Peer.Received()) >= senders*each })
		got := h.Peer.Received()
		require.Len(t, got, senders*each)
		next := make([]int, senders)
		for _, out := range got {
			require.Equal(t, peer.OutAudio, out.Kind)
			var g, i int
			_, err := fmt.Sscanf(string(out.Audio), "g%d-%d", &g, &i)
			require.NoError(t, err, "frame %q", out.Audio)
			assert.Equal(t, next[g], i, "frames of one sender stay in order")
			next[g] = i + 1
		}
	})
}

func newTelephony(t *testing.T, newHarness func(t *testing.T) TelephonyHarness) TelephonyHarness {
	t.Helper()
	h := newHarness(t)
	t.Cleanup(func() { _ = h.Channel.End(ports.EndCompleted) })
	return h
}

// startedTelephony returns a harness whose call has started and whose
// start event the channel has delivered (a provider may need the start's
// ids to address what the channel sends).
func startedTelephony(t *testing.T, newHarness func(t *testing.T) TelephonyHarness) TelephonyHarness {
	t.Helper()
	h := newTelephony(t, newHarness)
	done := peerAsync(t, func(ctx context.Context) error {
		return h.Peer.Start(ctx, ports.CallInfo{CallID: unique("CA"), Params: map[string]string{"token": "t"}})
	})
	recvCallType(t, h.Channel, ports.CallStarted)
	require.NoError(t, awaitPeer(t, done))
	return h
}

// recvCallType skips events until one of type typ arrives, copying its
// payload (valid only until the next Recv).
func recvCallType(t *testing.T, ch ports.TelephonyChannel, typ ports.CallEventType) ports.CallEvent {
	t.Helper()
	for {
		ev, err := within(t, "Recv", ch.Recv)
		require.NoError(t, err)
		if ev.Type == typ {
			ev.Audio = append([]byte(nil), ev.Audio...)
			return ev
		}
	}
}

// requireCallEnd reads until Recv fails and checks that the failure is the
// end of the stream.
func requireCallEnd(t *testing.T, ch ports.TelephonyChannel) {
	t.Helper()
	for {
		_, err := within(t, "Recv", ch.Recv)
		if err == nil {
			continue
		}
		require.ErrorIs(t, err, ports.ErrClosed)
		var ended *ports.SessionEnded
		require.True(t, errors.As(err, &ended), "the error carries a *ports.SessionEnded: %v", err)
		assert.NotEmpty(t, ended.Reason)
		return
	}
}

func requirePeerEnded(t *testing.T, p peer.Telephony, reason ports.EndReason) {
	t.Helper()
	eventually(t, "peer sees the end", func() bool {
		ended, _ := p.Ended()
		return ended
	})
	_, got := p.Ended()
	assert.Equal(t, reason, got, "end reason")
}

// silence returns ms milliseconds of silence in f, base64-encoded.
func silence(f ports.AudioFormat, ms int) []byte {
	raw := make([]byte, f.BytesPerSample()*f.SampleRate/1000*ms)
	if f.Encoding == ports.EncodingPCMU {
		for i := range raw {
			raw[i] = 0xff // mu-law silence
		}
	}
	return base64.StdEncoding.AppendEncode(nil, raw)
}
