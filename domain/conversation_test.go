package domain_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/domain"
)

// ms is the number of mu-law bytes in d milliseconds.
func ms(d int) int { return d * domain.BytesPerMs }

// call drives a Conversation in a test, remembering the marks it was given
// by sequence so steps can echo them by position.
type call struct {
	t     *testing.T
	c     *domain.Conversation
	marks []string
}

func (k *call) send(resp, item string, d int) {
	k.t.Helper()
	mark, ok := k.c.AssistantAudio(resp, item, ms(d))
	require.True(k.t, ok, "audio of %s/%s refused", resp, item)
	require.NotEmpty(k.t, mark)
	k.marks = append(k.marks, mark)
}

func (k *call) played(i int) {
	k.t.Helper()
	require.Equal(k.t, domain.MarkPlayed, k.c.MarkEchoed(k.marks[i]), "mark #%d", i)
}

func TestCallerStartedSpeaking(t *testing.T) {
	tests := []struct {
		name  string
		steps func(k *call)
		want  domain.Interruption
		cut   bool
	}{
		{
			name:  "nothing sent: nothing playing",
			steps: func(k *call) {},
		},
		{
			name: "everything played: nothing to clear",
			steps: func(k *call) {
				k.send("r1", "a", 100)
				k.send("r1", "a", 100)
				k.played(0)
				k.played(1)
			},
		},
		{
			name: "mid-item: cut at the last acknowledged mark",
			steps: func(k *call) {
				k.send("r1", "a", 100)
				k.send("r1", "a", 100)
				k.send("r1", "a", 100)
				k.played(0)
			},
			want: domain.Interruption{ItemID: "a", AudioEndMs: 100},
			cut:  true,
		},
		{
			name: "nothing acknowledged yet: the caller heard none of it",
			steps: func(k *call) {
				k.send("r1", "a", 240)
			},
			want: domain.Interruption{ItemID: "a", AudioEndMs: 0},
			cut:  true,
		},
		{
			name: "two queued items, second one playing",
			steps: func(k *call) {
				k.send("r1", "a", 100)
				k.send("r1", "a", 100)
				k.send("r2", "b", 100)
				k.send("r2", "b", 100)
				k.send("r2", "b", 100)
				k.played(0)
				k.played(1)
				k.played(2)
				k.played(3)
			},
			want: domain.Interruption{ItemID: "b", AudioEndMs: 200},
			cut:  true,
		},
		{
			name: "two queued items, first one still playing",
			steps: func(k *call) {
				k.send("r1", "a", 300)
				k.send("r1", "a", 300)
				k.send("r2", "b", 500)
				k.played(0)
			},
			want: domain.Interruption{ItemID: "a", AudioEndMs: 300},
			cut:  true,
		},
		{
			name: "second item queued but first fully played: cut the second at zero",
			steps: func(k *call) {
				k.send("r1", "a", 300)
				k.send("r2", "b", 500)
				k.played(0)
			},
			want: domain.Interruption{ItemID: "b", AudioEndMs: 0},
			cut:  true,
		},
		{
			name: "a later echo implies the earlier marks played",
			steps: func(k *call) {
				k.send("r1", "a", 20)
				k.send("r1", "a", 20)
				k.send("r1", "a", 20)
				k.played(1)
			},
			want: domain.Interruption{ItemID: "a", AudioEndMs: 40},
			cut:  true,
		},
		{
			name: "an item resumed after playing out keeps its offsets",
			steps: func(k *call) {
				k.send("r1", "a", 100)
				k.played(0)
				k.send("r1", "a", 60)
			},
			want: domain.Interruption{ItemID: "a", AudioEndMs: 100},
			cut:  true,
		},
		{
			name: "odd chunk sizes never round up past what was acknowledged",
			steps: func(k *call) {
				_, _ = k.c.AssistantAudio("r1", "a", 1)
				mark, _ := k.c.AssistantAudio("r1", "a", 12)
				k.marks = append(k.marks, "", mark)
				k.c.AssistantAudio("r1", "a", 800)
				k.played(1)
			},
			want: domain.Interruption{ItemID: "a", AudioEndMs: 1}, // 13 bytes = 1.625 ms
			cut:  true,
		},
		{
			name: "zero-length item: nothing to play, nothing to clear",
			steps: func(k *call) {
				mark, ok := k.c.AssistantAudio("r1", "a", 0)
				require.True(k.t, ok)
				require.Empty(k.t, mark)
			},
		},
		{
			name: "zero-length item queued behind a playing one",
			steps: func(k *call) {
				k.send("r1", "a", 100)
				k.send("r1", "a", 100)
				_, _ = k.c.AssistantAudio("r2", "b", 0)
				k.played(0)
			},
			want: domain.Interruption{ItemID: "a", AudioEndMs: 100},
			cut:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &call{t: t, c: domain.NewConversation()}
			tt.steps(k)
			got, cut := k.c.CallerStartedSpeaking("caller-1")
			assert.Equal(t, tt.cut, cut)
			assert.Equal(t, tt.want, got)
			if cut {
				assert.False(t, k.c.Outstanding(), "a clear leaves nothing outstanding")
				assert.Equal(t, 1, k.c.BargeIns())
			} else {
				assert.Equal(t, 0, k.c.BargeIns())
			}
		})
	}
}

func TestAfterInterruption(t *testing.T) {
	k := &call{t: t, c: domain.NewConversation()}
	k.c.ResponseStarted("r1")
	k.send("r1", "a", 100)
	k.send("r1", "a", 100)
	k.send("r1", "a", 100)
	k.played(0)

	in, cut := k.c.CallerStartedSpeaking("caller-1")
	require.True(t, cut)
	require.Equal(t, domain.Interruption{ItemID: "a", AudioEndMs: 100}, in)

	t.Run("marks echoed after the clear count as flushed, not played", func(t *testing.T) {
		assert.Equal(t, domain.MarkFlushed, k.c.MarkEchoed(k.marks[1]))
		assert.Equal(t, domain.MarkFlushed, k.c.MarkEchoed(k.marks[2]))
		assert.Equal(t, domain.MarkUnknown, k.c.MarkEchoed(k.marks[2]), "a mark counts once")
		turns := k.c.Turns()
		require.Len(t, turns, 2)
		require.Equal(t, domain.Assistant, turns[0].Speaker)
		assert.Equal(t, 100, turns[0].HeardMs, "flushed audio was not heard")
		assert.Equal(t, 300, turns[0].SentMs)
		assert.True(t, turns[0].Interrupted)
		assert.Equal(t, domain.Caller, turns[1].Speaker)
	})
	t.Run("late audio of the interrupted response is refused", func(t *testing.T) {
		mark, ok := k.c.AssistantAudio("r1", "a", ms(20))
		assert.False(t, ok)
		assert.Empty(t, mark)
		assert.False(t, k.c.Outstanding())
		_, cut := k.c.CallerStartedSpeaking("caller-2")
		assert.False(t, cut, "refused audio is never outstanding")
	})
	t.Run("the next response plays and can be interrupted again", func(t *testing.T) {
		k.c.ResponseFinished("r1")
		k.c.ResponseStarted("r2")
		k.send("r2", "b", 40)
		k.send("r2", "b", 40)
		k.played(len(k.marks) - 2)
		in, cut := k.c.CallerStartedSpeaking("caller-3")
		require.True(t, cut)
		assert.Equal(t, domain.Interruption{ItemID: "b", AudioEndMs: 40}, in)
		assert.Equal(t, 2, k.c.BargeIns())
	})
}

func TestSpeechDuringActiveResponseWithNothingOutstanding(t *testing.T) {
	c := domain.NewConversation()
	c.ResponseStarted("r1")
	require.True(t, c.ResponseActive())
	_, cut := c.CallerStartedSpeaking("caller-1")
	assert.False(t, cut, "nothing sent, nothing to clear")
	_, ok := c.AssistantAudio("r1", "a", ms(20))
	assert.False(t, ok, "the response the caller spoke over is superseded")
	c.ResponseFinished("r1")
	assert.False(t, c.ResponseActive())
}

func TestMarkEchoedUnknown(t *testing.T) {
	c := domain.NewConversation()
	assert.Equal(t, domain.MarkUnknown, c.MarkEchoed("nope"))
	mark, _ := c.AssistantAudio("r1", "a", ms(20))
	assert.Equal(t, domain.MarkPlayed, c.MarkEchoed(mark))
	assert.Equal(t, domain.MarkUnknown, c.MarkEchoed(mark), "echoed twice")
	assert.False(t, c.Outstanding())
}

func TestMarksAreUnique(t *testing.T) {
	c := domain.NewConversation()
	seen := map[string]bool{}
	for i := range 1000 {
		mark, ok := c.AssistantAudio("r", "a", 160)
		require.True(t, ok)
		require.False(t, seen[mark], "mark %q repeated at %d", mark, i)
		seen[mark] = true
		if i%3 == 0 {
			c.MarkEchoed(mark)
		}
	}
}

func TestTranscript(t *testing.T) {
	c := domain.NewConversation()
	c.CallerAudio(1000)
	mark, _ := c.AssistantAudio("r1", "a1", ms(500))
	c.AssistantSaid("a1", "Hello, how can I help?")
	c.MarkEchoed(mark)
	c.CallerAudio(2500)
	c.CallerAudio(2480) // a late chunk does not move the caller back
	assert.Equal(t, int64(2500), c.CallerPosition())
	_, cut := c.CallerStartedSpeaking("c1")
	require.False(t, cut)
	c.Digit("4")
	c.Digit("2")
	c.CallerSaid("c1", "What's the weather?")
	c.CallerSaid("c2", "Hello?") // transcript of an item never announced
	c.AssistantSaid("a2", "Sunny.")

	want := []domain.Turn{
		{Speaker: domain.Assistant, ItemID: "a1", Text: "Hello, how can I help?", StartMs: 1000, SentMs: 500, HeardMs: 500},
		{Speaker: domain.Caller, ItemID: "c1", Text: "What's the weather?", StartMs: 2500},
		{Speaker: domain.Caller, ItemID: "c2", Text: "Hello?", StartMs: 2500},
		{Speaker: domain.Assistant, ItemID: "a2", Text: "Sunny.", StartMs: 2500},
	}
	assert.Equal(t, want, c.Turns())
	assert.Equal(t, "42", c.Digits())
	assert.Equal(t, "caller", domain.Caller.String())
	assert.Equal(t, "assistant", domain.Assistant.String())

	turns := c.Turns()
	turns[0].Text = "changed"
	assert.Equal(t, "Hello, how can I help?", c.Turns()[0].Text, "Turns returns a copy")
}

func TestMarkNamesNotOurs(t *testing.T) {
	c := domain.NewConversation()
	mark, _ := c.AssistantAudio("r1", "a", ms(20))
	for _, name := range []string{"", "m", "x1", "m0", "m01", "m-1", "m+1", "m1x", "M1", "m99", "m18446744073709551616"} {
		assert.Equal(t, domain.MarkUnknown, c.MarkEchoed(name), "%q", name)
	}
	assert.True(t, c.Outstanding(), "unknown echoes change nothing")
	assert.Equal(t, domain.MarkPlayed, c.MarkEchoed(mark))
}

func TestTwoClearsFlushTheirOwnMarks(t *testing.T) {
	k := &call{t: t, c: domain.NewConversation()}
	k.c.ResponseStarted("r1")
	k.send("r1", "a", 100)
	k.send("r1", "a", 100)
	_, cut := k.c.CallerStartedSpeaking("c1")
	require.True(t, cut)
	k.c.ResponseFinished("r1")
	k.c.ResponseStarted("r2")
	k.send("r2", "b", 100)
	k.send("r2", "b", 100)
	k.played(2)
	in, cut := k.c.CallerStartedSpeaking("c2")
	require.True(t, cut)
	assert.Equal(t, domain.Interruption{ItemID: "b", AudioEndMs: 100}, in)
	// The first clear's echoes arrive late, after the second clear.
	assert.Equal(t, domain.MarkFlushed, k.c.MarkEchoed(k.marks[0]))
	assert.Equal(t, domain.MarkFlushed, k.c.MarkEchoed(k.marks[1]))
	assert.Equal(t, domain.MarkFlushed, k.c.MarkEchoed(k.marks[3]))
	for _, m := range k.marks {
		assert.Equal(t, domain.MarkUnknown, k.c.MarkEchoed(m), "every mark counts once")
	}
	turns := k.c.Turns()
	assert.Equal(t, 0, turns[0].HeardMs)
	assert.Equal(t, 100, turns[2].HeardMs)
}

func TestResponseFinishedForgetsTheInterruption(t *testing.T) {
	c := domain.NewConversation()
	c.ResponseStarted("r1")
	_, _ = c.AssistantAudio("r1", "a", ms(20))
	_, cut := c.CallerStartedSpeaking("c1")
	require.True(t, cut)
	_, ok := c.AssistantAudio("r1", "a", ms(20))
	assert.False(t, ok, "refused while the response is not done")
	c.ResponseFinished("r1")
	assert.False(t, c.ResponseActive())
}

func TestDigits(t *testing.T) {
	c := domain.NewConversation()
	for _, d := range []string{"", "12", "a", "55", " 1", "\x00", "١", "*#", "+"} {
		assert.False(t, c.Digit(d), "%q is not a key", d)
		assert.False(t, domain.IsKey(d), "%q", d)
	}
	assert.Empty(t, c.Digits(), "nothing but keys is recorded")
	assert.Zero(t, c.DigitCount())
	keys := "0123456789*#"
	for i := range 100 {
		require.True(t, c.Digit(keys[i%len(keys):i%len(keys)+1]))
	}
	assert.Len(t, c.Digits(), domain.MaxDigits, "the first MaxDigits keys are kept")
	assert.Equal(t, "0123456789*#0123", c.Digits()[:16])
	assert.Equal(t, 100, c.DigitCount(), "every key is counted")
}

func TestMarkSeq(t *testing.T) {
	c := domain.NewConversation()
	for range 12 {
		mark, _ := c.AssistantAudio("r1", "a", ms(20))
		seq, ok := domain.MarkSeq(mark)
		require.True(t, ok, mark)
		assert.Equal(t, mark, fmt.Sprintf("m%d", seq))
	}
	assert.Equal(t, domain.MarkPlayed, c.MarkSeqEchoed(3), "echoed by number as by name")
	assert.Equal(t, domain.MarkUnknown, c.MarkSeqEchoed(2), "already implied by the echo of m3")
	assert.Equal(t, domain.MarkUnknown, c.MarkSeqEchoed(99), "never sent")
	for _, name := range []string{"", "m", "m0", "m01", "x1", "m1x", "m18446744073709551616", "m" + strings.Repeat("9", 60)} {
		_, ok := domain.MarkSeq(name)
		assert.False(t, ok, "%q", name)
	}
}
