package domain_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convgateway/gateway/domain"
)

// play hands ms milliseconds of utterance u to the caller and fails when
// the conversation refuses it.
func play(t *testing.T, c *domain.Conversation, u string, ms int) {
	t.Helper()
	require.True(t, c.AssistantAudio(u, ms), "audio of %s refused", u)
}

func TestCallerStartedSpeaking(t *testing.T) {
	tests := []struct {
		name  string
		steps func(t *testing.T, c *domain.Conversation)
		want  domain.Interruption
		cut   bool
	}{
		{
			name:  "nothing sent: nothing playing",
			steps: func(t *testing.T, c *domain.Conversation) {},
		},
		{
			name: "everything played: nothing to clear",
			steps: func(t *testing.T, c *domain.Conversation) {
				play(t, c, "a", 100)
				play(t, c, "a", 100)
				c.Played(200)
			},
		},
		{
			name: "mid-utterance: cut where playback was",
			steps: func(t *testing.T, c *domain.Conversation) {
				play(t, c, "a", 100)
				play(t, c, "a", 100)
				play(t, c, "a", 100)
				c.Played(140)
			},
			want: domain.Interruption{Utterance: "a", HeardMs: 140},
			cut:  true,
		},
		{
			name: "nothing played yet: heard nothing",
			steps: func(t *testing.T, c *domain.Conversation) {
				play(t, c, "a", 100)
			},
			want: domain.Interruption{Utterance: "a", HeardMs: 0},
			cut:  true,
		},
		{
			name: "second utterance being heard: cut it, counted from its own start",
			steps: func(t *testing.T, c *domain.Conversation) {
				play(t, c, "a", 100)
				play(t, c, "b", 100)
				play(t, c, "b", 100)
				c.Played(160)
			},
			want: domain.Interruption{Utterance: "b", HeardMs: 60},
			cut:  true,
		},
		{
			name: "positions beyond the timeline count up to its end",
			steps: func(t *testing.T, c *domain.Conversation) {
				play(t, c, "a", 100)
				play(t, c, "b", 100)
				c.Played(150)
				c.Played(120) // backwards: ignored
			},
			want: domain.Interruption{Utterance: "b", HeardMs: 50},
			cut:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := domain.NewConversation()
			tt.steps(t, c)
			got, cut := c.CallerStartedSpeaking("caller")
			assert.Equal(t, tt.cut, cut)
			assert.Equal(t, tt.want, got)
			assert.False(t, c.Outstanding(), "nothing outstanding after a barge-in")
		})
	}
}

func TestAfterInterruption(t *testing.T) {
	c := domain.NewConversation()
	play(t, c, "a", 100)
	play(t, c, "a", 100)
	play(t, c, "a", 100)
	c.Played(100)

	in, cut := c.CallerStartedSpeaking("caller-1")
	require.True(t, cut)
	require.Equal(t, domain.Interruption{Utterance: "a", HeardMs: 100}, in)

	t.Run("cleared audio is not heard", func(t *testing.T) {
		c.Played(300) // the channel reports the cleared audio as done
		turns := c.Turns()
		require.Len(t, turns, 2)
		require.Equal(t, domain.Assistant, turns[0].Speaker)
		assert.Equal(t, 100, turns[0].HeardMs, "cleared audio was not heard")
		assert.Equal(t, 300, turns[0].SentMs)
		assert.True(t, turns[0].Interrupted)
		assert.Equal(t, domain.Caller, turns[1].Speaker)
	})
	t.Run("late audio of the interrupted utterance is refused", func(t *testing.T) {
		assert.False(t, c.AssistantAudio("a", 20))
		assert.False(t, c.Outstanding())
		_, cut := c.CallerStartedSpeaking("caller-2")
		assert.False(t, cut, "refused audio is never outstanding")
	})
	t.Run("the next utterance plays and can be interrupted again", func(t *testing.T) {
		c.UtteranceDone("a")
		play(t, c, "b", 40)
		play(t, c, "b", 40)
		c.Played(340)
		in, cut := c.CallerStartedSpeaking("caller-3")
		require.True(t, cut)
		assert.Equal(t, domain.Interruption{Utterance: "b", HeardMs: 40}, in)
		assert.Equal(t, 2, c.BargeIns())
	})
}

func TestUtteranceDoneBeforeBargeInIsNotRefused(t *testing.T) {
	c := domain.NewConversation()
	play(t, c, "a", 100)
	c.UtteranceDone("a")
	play(t, c, "b", 100) // still open
	_, cut := c.CallerStartedSpeaking("caller")
	require.True(t, cut)
	assert.False(t, c.AssistantAudio("b", 20), "the open utterance is cut")
	assert.True(t, c.AssistantAudio("c", 20), "a new utterance plays")
}

func TestSpeechWithNothingOutstandingCutsOpenUtterances(t *testing.T) {
	c := domain.NewConversation()
	require.True(t, c.AssistantAudio("a", 0)) // begun, nothing to play yet
	_, cut := c.CallerStartedSpeaking("caller-1")
	assert.False(t, cut, "nothing sent, nothing to clear")
	assert.False(t, c.AssistantAudio("a", 20), "the utterance the caller spoke over is superseded")
}

func TestRefusedSetStaysBounded(t *testing.T) {
	c := domain.NewConversation()
	for i := range 1000 {
		u := fmt.Sprintf("a%d", i)
		for range 3 {
			require.True(t, c.AssistantAudio(u, 20), "barge-in %d: audio of a new utterance refused", i)
		}
		if i%2 == 0 {
			c.UtteranceDone(u) // done before the caller speaks over its audio
		}
		_, cut := c.CallerStartedSpeaking(fmt.Sprintf("c%d", i))
		require.True(t, cut, "barge-in %d", i)
		if i%2 == 1 {
			c.UtteranceDone(u)
		}
	}
	assert.Equal(t, 1000, c.BargeIns())
	// Every utterance is done: none is refused any more, and a reused name
	// (never done by a model, but the bound is what matters) plays.
	assert.True(t, c.AssistantAudio("a1", 20))
}

func TestCallerTookTurn(t *testing.T) {
	c := domain.NewConversation()
	play(t, c, "a", 200)
	c.Played(80)
	in, cut := c.CallerTookTurn()
	require.True(t, cut)
	assert.Equal(t, domain.Interruption{Utterance: "a", HeardMs: 80}, in)
	assert.True(t, c.AssistantAudio("a", 20), "a full duplex model stops by itself: nothing is refused")
	_, cut = c.CallerTookTurn()
	assert.True(t, cut, "the new audio is outstanding")
	_, cut = c.CallerTookTurn()
	assert.False(t, cut, "nothing outstanding")
}

func TestWithdraw(t *testing.T) {
	c := domain.NewConversation()
	play(t, c, "a", 100)
	play(t, c, "b", 100)
	play(t, c, "b", 100)
	c.Played(50)
	assert.Equal(t, int64(250), c.OutstandingMs())
	c.Withdraw(150) // held back, never handed: off the end
	assert.Equal(t, int64(100), c.OutstandingMs())
	turns := c.Turns()
	assert.Equal(t, 100, turns[0].SentMs)
	assert.Equal(t, 50, turns[1].SentMs)
	c.Withdraw(1000) // never past what played
	assert.Equal(t, int64(0), c.OutstandingMs())
	assert.False(t, c.Outstanding())
	assert.Equal(t, 50, c.Turns()[0].SentMs)
	play(t, c, "c", 40) // the timeline goes on from the withdrawn end
	c.Played(90)
	assert.Equal(t, 40, c.Turns()[2].HeardMs)
}

func TestTranscript(t *testing.T) {
	c := domain.NewConversation()
	c.CallerAudio(1000)
	play(t, c, "a1", 500)
	c.AssistantSaid("a1", "Hello, how can I help?", true)
	c.Played(500)
	c.CallerAudio(2500)
	c.CallerAudio(2480) // a late chunk does not move the caller back
	assert.Equal(t, int64(2500), c.CallerPosition())
	_, cut := c.CallerStartedSpeaking("c1")
	require.False(t, cut)
	c.Digit("4")
	c.Digit("2")
	c.CallerSaid("c1", "What's the weather?", true)
	c.CallerSaid("c2", "Hello?", true) // an utterance never announced
	c.AssistantSaid("a2", "Sunny.", true)

	want := []domain.Turn{
		{Speaker: domain.Assistant, Utterance: "a1", Text: "Hello, how can I help?", StartMs: 1000, SentMs: 500, HeardMs: 500},
		{Speaker: domain.Caller, Utterance: "c1", Text: "What's the weather?", StartMs: 2500},
		{Speaker: domain.Caller, Utterance: "c2", Text: "Hello?", StartMs: 2500},
		{Speaker: domain.Assistant, Utterance: "a2", Text: "Sunny.", StartMs: 2500},
	}
	assert.Equal(t, want, c.Turns())
	assert.Equal(t, "42", c.Digits())
	assert.Equal(t, "caller", domain.Caller.String())
	assert.Equal(t, "assistant", domain.Assistant.String())

	turns := c.Turns()
	turns[0].Text = "changed"
	assert.Equal(t, "Hello, how can I help?", c.Turns()[0].Text, "Turns returns a copy")
}

func TestTranscriptPiecesWithoutNames(t *testing.T) {
	c := domain.NewConversation()
	c.CallerSaid("", "Hello ", false)
	c.CallerSaid("", "there.", false)
	assert.Equal(t, "Hello there.", c.CallerText())
	play(t, c, "u1", 100)
	c.AssistantSaid("u1", "Hi! ", false)
	c.AssistantSaid("u1", "How can I help?", false)
	assert.Empty(t, c.CallerText(), "the assistant has the turn")
	c.CallerSaid("", "Book a table.", false)
	assert.Equal(t, "Book a table.", c.CallerText())
	got := c.Turns()
	require.Len(t, got, 3)
	assert.Equal(t, "Hello there.", got[0].Text)
	assert.Equal(t, "Hi! How can I help?", got[1].Text)
	assert.Equal(t, domain.Caller, got[2].Speaker)
}

func TestDigits(t *testing.T) {
	c := domain.NewConversation()
	for _, d := range []string{"1", "*", "#", "", "12", "a", "٣"} {
		c.Digit(d)
	}
	assert.Equal(t, "1*#", c.Digits())
	assert.Equal(t, 3, c.DigitCount())
	for range domain.MaxDigits + 10 {
		c.Digit("9")
	}
	assert.Len(t, c.Digits(), domain.MaxDigits)
	assert.Equal(t, 3+domain.MaxDigits+10, c.DigitCount())
}
