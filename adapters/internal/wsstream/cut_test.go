package wsstream

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A close reason is cut to fit a close frame, never inside a character.
func TestCutUTF8(t *testing.T) {
	reason := "x" + strings.Repeat("€", 60) // 181 bytes; a cut at 120 or 123 falls inside a "€"
	got := cutUTF8(reason, maxCloseReason)
	if !utf8.ValidString(got) || !strings.HasPrefix(reason, got) {
		t.Fatalf("cut to %q, not a prefix of whole characters", got)
	}
	if len(got) > maxCloseReason || len(got) < maxCloseReason-2 {
		t.Fatalf("cut to %d bytes, want the longest prefix up to %d", len(got), maxCloseReason)
	}
	if short := "refused"; cutUTF8(short, maxCloseReason) != short {
		t.Fatal("a short reason is cut")
	}
}
