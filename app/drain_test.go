package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/adapters/store/memory"
)

// expired returns a context that has already ended.
func expired(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A gateway whose HTTP server used up the whole drain deadline shuts its
// use cases down with an expired context: with nothing pending, their
// Shutdown succeeds, every time.
func TestShutdownWithNothingPendingIgnoresAnExpiredContext(t *testing.T) {
	for i := range 200 {
		calls := NewCalls(CallsDeps{Tokens: fake.NewTokenStore(), Speech: fake.NewSpeechModel()})
		require.NoError(t, calls.Shutdown(expired(t)), "calls, round %d", i)

		store := memory.NewThreadStore()
		messages := NewMessages(MessagesDeps{
			Threads: store, Ledger: store, Locks: store, Assistant: fake.NewChatAssistant(), Sender: fake.NewMessageSender(),
		})
		require.NoError(t, messages.Shutdown(expired(t)), "messages, round %d", i)
	}
}

func TestDrain(t *testing.T) {
	t.Run("nothing pending", func(t *testing.T) {
		for range 200 {
			var tr tracker
			require.NoError(t, drain(expired(t), &tr, func() {}))
		}
	})
	t.Run("a loop that ends when asked is not pending", func(t *testing.T) {
		for range 200 {
			var tr tracker
			quit := make(chan struct{})
			tr.Loop(func() { <-quit })
			close(quit)
			require.NoError(t, drain(expired(t), &tr, func() {}))
		}
	})
	t.Run("pending work is stopped and reported", func(t *testing.T) {
		var tr tracker
		quit := make(chan struct{})
		tr.Go(func() { <-quit })
		err := drain(expired(t), &tr, func() { close(quit) })
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("a busy loop is pending", func(t *testing.T) {
		var tr tracker
		quit := make(chan struct{})
		busy := make(chan struct{})
		tr.Loop(func() {
			defer tr.Busy()()
			close(busy)
			<-quit
		})
		<-busy
		err := drain(expired(t), &tr, func() { close(quit) })
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("work that ends in time", func(t *testing.T) {
		var tr tracker
		tr.Go(func() { time.Sleep(10 * time.Millisecond) })
		require.NoError(t, drain(context.Background(), &tr, func() { t.Error("stop called") }))
	})
}
