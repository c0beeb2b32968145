package porttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/ports"
)

// WebSocket close codes a TelephonyPeer reports (RFC 6455).
const (
	CloseNormal = 1000
	ClosePolicy = 1008
)

// TelephonyChannel runs the conformance suite of ports.TelephonyChannel.
// newHarness is called once per subtest and returns a channel connected to
// its peer; subtests run in parallel, each with its own harness.
func TelephonyChannel(t *testing.T, newHarness func(t *testing.T) TelephonyHarness) {
	t.Run("Start", func(t *testing.T) {
		t.Parallel()
		h := newTelephony(t, newHarness)
		call, stream := unique("CA"), unique("MZ")
		params := map[string]string{"token": unique("tok"), "from": "+15551234567"}
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.Start(ctx, call, stream, params) })
		ev := recvCallType(t, h.Channel, ports.CallStart)
		assert.Equal(t, call, ev.CallSid)
		assert.Equal(t, stream, ev.StreamSid)
		assert.Equal(t, params, ev.Params)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("MediaInOrder", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		const frames = 100
		payload := func(i int) []byte { return fmt.Appendf(nil, "chunk%03df39/fw==", i) } // base64, as audio is
		done := peerAsync(t, func(ctx context.Context) error {
			for i := range frames {
				if err := h.Peer.Media(ctx, int64(i*20), payload(i)); err != nil {
					return err
				}
			}
			return nil
		})
		for i := range frames {
			ev := recvCallType(t, h.Channel, ports.CallMedia)
			assert.Equal(t, int64(i*20), ev.TimestampMs, "frame %d", i)
			assert.Equal(t, payload(i), ev.Payload, "frame %d", i)
		}
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("DTMF", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.DTMF(ctx, "5") })
		ev := recvCallType(t, h.Channel, ports.CallDTMF)
		assert.Equal(t, "5", ev.Digit)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("SendsReachPeer", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		audio := []byte("f39/f39/fw==")
		steps := []func(ctx context.Context) error{
			func(ctx context.Context) error { return h.Channel.SendAudio(ctx, audio) },
			func(ctx context.Context) error { return h.Channel.SendMark(ctx, "m1") },
			h.Channel.Clear,
			func(ctx context.Context) error { return h.Channel.SendAudio(ctx, []byte("AAAA")) },
			func(ctx context.Context) error { return h.Channel.SendMark(ctx, "m2") },
		}
		for _, step := range steps {
			require.NoError(t, withinErr(t, "send", step))
		}
		copy(audio, "XXXX") // the channel must not keep the caller's buffer
		want := []Outbound{
			{Kind: "media", Audio: []byte("f39/f39/fw==")},
			{Kind: "mark", Mark: "m1"},
			{Kind: "clear"},
			{Kind: "media", Audio: []byte("AAAA")},
			{Kind: "mark", Mark: "m2"},
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
			return h.Peer.DTMF(ctx, "4")
		})
		assert.Equal(t, "4", recvCallType(t, h.Channel, ports.CallDTMF).Digit, "the stream goes on")
		require.NoError(t, awaitPeer(t, done))
		assert.Equal(t, 3, h.Channel.Skipped())
		require.NoError(t, h.Channel.Close("done", false))
		assert.Equal(t, 3, h.Channel.Skipped(), "the count stays after Close")
	})

	t.Run("StopEndsStream", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		done := peerAsync(t, h.Peer.Stop)
		recvCallType(t, h.Channel, ports.CallStop)
		requireCallEnd(t, h.Channel)
		require.NoError(t, awaitPeer(t, done))
	})

	t.Run("CloseNormal", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		require.NoError(t, h.Channel.Close("done", false))
		requirePeerClosed(t, h.Peer, CloseNormal)
		_ = h.Channel.Close("again", true) // idempotent: the first close stands
		requirePeerClosed(t, h.Peer, CloseNormal)
	})

	t.Run("ClosePolicy", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		require.NoError(t, h.Channel.Close("invalid_token", true))
		requirePeerClosed(t, h.Peer, ClosePolicy)
	})

	t.Run("AfterClose", func(t *testing.T) {
		t.Parallel()
		h := startedTelephony(t, newHarness)
		require.NoError(t, h.Channel.Close("done", false))
		steps := map[string]func(ctx context.Context) error{
			"SendAudio": func(ctx context.Context) error { return h.Channel.SendAudio(ctx, []byte("AAAA")) },
			"SendMark":  func(ctx context.Context) error { return h.Channel.SendMark(ctx, "m") },
			"Clear":     h.Channel.Clear,
			"Recv":      func(ctx context.Context) error { _, err := h.Channel.Recv(ctx); return err },
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
		require.NoError(t, h.Channel.Close("done", false))
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
		done := peerAsync(t, func(ctx context.Context) error { return h.Peer.DTMF(ctx, "#") })
		assert.Equal(t, "#", recvCallType(t, h.Channel, ports.CallDTMF).Digit)
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
					if err := h.Channel.SendAudio(ctx, fmt.Appendf(nil, "g%d-%03d", g, i)); err != nil {
						t.Errorf("SendAudio: %v", err)
						return
					}
					if err := h.Channel.SendMark(ctx, fmt.Sprintf("g%d-%03d", g, i)); err != nil {
						t.Errorf("SendMark: %v", err)
						return
					}
				}
			})
		}
		waitGroup(t, "concurrent sends", &wg)
		eventually(t, "all sends received", func() bool { return len(h.Peer.Received()) >= 2*senders*each })
		got := h.Peer.Received()
		require.Len(t, got, 2*senders*each)
		next := make([]int, senders)
		for _, out := range got {
			if out.Kind != "media" {
				continue
			}
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
	t.Cleanup(func() { _ = h.Channel.Close("test_end", false) })
	return h
}

// startedTelephony returns a harness whose stream has started and whose
// start event the channel has delivered (outbound messages need the stream
// sid).
func startedTelephony(t *testing.T, newHarness func(t *testing.T) TelephonyHarness) TelephonyHarness {
	t.Helper()
	h := newTelephony(t, newHarness)
	done := peerAsync(t, func(ctx context.Context) error {
		return h.Peer.Start(ctx, unique("CA"), unique("MZ"), map[string]string{"token": "t"})
	})
	recvCallType(t, h.Channel, ports.CallStart)
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
			ev.Payload = append([]byte(nil), ev.Payload...)
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

func requirePeerClosed(t *testing.T, p TelephonyPeer, code int) {
	t.Helper()
	eventually(t, "peer sees the close", func() bool {
		closed, _ := p.Closed()
		return closed
	})
	_, got := p.Closed()
	assert.Equal(t, code, got, "close code")
}
