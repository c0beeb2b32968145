package simsess

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegistry(t *testing.T) {
	var r Registry[string]
	_, ok := r.Newest()
	assert.False(t, ok)
	short, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	_, err := r.Latest(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan string, 1)
	go func() {
		s, _ := r.Latest(t.Context())
		got <- s
	}()
	r.Add("a")
	assert.Equal(t, "a", <-got, "a waiter wakes up")
	r.Add("b")
	s, err := r.Latest(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "b", s)
	assert.Equal(t, []string{"a", "b"}, r.All())
}

func TestReadLoop(t *testing.T) {
	msgs := make(chan []string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		require.NoError(t, err)
		var seen []string
		err = ReadLoop(c, func(m []byte) { seen = append(seen, string(m)) })
		assert.Equal(t, websocket.StatusNormalClosure, websocket.CloseStatus(err))
		msgs <- seen
	}))
	defer srv.Close()
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	for _, m := range []string{"one", "two"} {
		require.NoError(t, c.Write(t.Context(), websocket.MessageText, []byte(m)))
	}
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	assert.Equal(t, []string{"one", "two"}, <-msgs)
}
