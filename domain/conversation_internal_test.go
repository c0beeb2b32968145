package domain

import (
	"fmt"
	"testing"
)

// TestInterruptedSetStaysBounded: responses that finished before the
// caller talked over their audio can send nothing more, so they are not
// kept among the interrupted ones; the set holds only responses still in
// progress, however many barge-ins a call has.
func TestInterruptedSetStaysBounded(t *testing.T) {
	c := NewConversation()
	for i := range 1000 {
		resp, item := fmt.Sprintf("r%d", i), fmt.Sprintf("a%d", i)
		c.ResponseStarted(resp)
		for range 3 {
			if _, ok := c.AssistantAudio(resp, item, 160); !ok {
				t.Fatalf("barge-in %d: audio of a new response refused", i)
			}
		}
		if i%2 == 0 {
			// The response is done before the caller speaks over its
			// audio, which is still playing.
			c.ResponseFinished(resp)
		}
		if _, cut := c.CallerStartedSpeaking(fmt.Sprintf("c%d", i)); !cut {
			t.Fatalf("barge-in %d: nothing cut", i)
		}
		if i%2 == 1 {
			c.ResponseFinished(resp) // after the barge-in
		}
		if n := len(c.interrupted); n > 1 {
			t.Fatalf("after barge-in %d the interrupted set holds %d responses", i, n)
		}
	}
	if n := len(c.interrupted); n != 0 {
		t.Fatalf("every response is done, yet %d are kept as interrupted", n)
	}
	if c.BargeIns() != 1000 {
		t.Fatalf("barge-ins: got %d, want 1000", c.BargeIns())
	}
}
