package domain

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitMessage(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"empty", "", 10, nil},
		{"only whitespace", " \n\t ", 10, nil},
		{"short", "Hello there.", 1600, []string{"Hello there."}},
		{"exactly the limit", "abcde", 5, []string{"abcde"}},
		{"trimmed", "  hi  ", 10, []string{"hi"}},
		{
			"sentence boundary preferred over a later word boundary",
			"One two three. Four five six seven.", 20,
			[]string{"One two three.", "Four five six seven."},
		},
		{
			"last sentence end within the limit",
			"Aa. Bb. Cc. Dd dd dd dd.", 12,
			[]string{"Aa. Bb. Cc.", "Dd dd dd dd."},
		},
		{
			"sentence end too early falls back to words",
			"Hi. this is a rather long sentence", 20,
			[]string{"Hi. this is a rather", "long sentence"},
		},
		{
			"question, exclamation and closing quote",
			`He asked "why?" Then left! And so on`, 16,
			[]string{`He asked "why?"`, "Then left!", "And so on"},
		},
		{
			"line break is a boundary",
			"first line here\nsecond line", 20,
			[]string{"first line here", "second line"},
		},
		{
			"word boundary",
			"alpha beta gamma delta", 11,
			[]string{"alpha beta", "gamma delta"},
		},
		{
			"whitespace right after the limit",
			"abcde fghij", 5,
			[]string{"abcde", "fghij"},
		},
		{
			"hard split of one huge word",
			"abcdefghijkl", 5,
			[]string{"abcde", "fghij", "kl"},
		},
		{
			"hard split after a word",
			"ab cdefghijkl", 5,
			[]string{"ab", "cdefg", "hijkl"},
		},
		{
			"counts runes not bytes",
			"ééééé ééééé", 5,
			[]string{"ééééé", "ééééé"},
		},
		{
			"hard split keeps multibyte runes whole",
			"日本語のテキスト", 3,
			[]string{"日本語", "のテキ", "スト"},
		},
		{
			"CJK sentence end",
			"日本語です。テキストです", 8,
			[]string{"日本語です。", "テキストです"},
		},
		{
			"runs of whitespace at a cut are dropped",
			"aaaa.   \n\n  bbbb", 6,
			[]string{"aaaa.", "bbbb"},
		},
		{"limit one", "a b", 1, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitMessage(tt.text, tt.limit)
			assert.Equal(t, tt.want, got)
			checkSplit(t, tt.text, tt.limit, got)
		})
	}
}

func TestSplitMessageWhatsAppLimit(t *testing.T) {
	sentence := "This sentence is exactly forty-five chars. "
	text := strings.Repeat(sentence, 100) // 4,300 runes
	parts := SplitMessage(text, 1600)
	require.Len(t, parts, 3)
	for _, p := range parts {
		assert.True(t, strings.HasSuffix(p, "."), "part ends at a sentence: %q", p[len(p)-10:])
	}
	checkSplit(t, text, 1600, parts)
}

func TestSplitMessagePanicsOnBadLimit(t *testing.T) {
	assert.Panics(t, func() { SplitMessage("text", 0) })
}

func FuzzSplitMessage(f *testing.F) {
	f.Add("Hello. How are you? Fine!", 7)
	f.Add("a\u00a0b\u2003c  d\n\ne", 2)
	f.Add("日本語です。テキストです", 4)
	f.Add("\xff\xfe broken utf8 \xc3", 3)
	f.Add(`"Quoted." (Bracketed!) 'single?'`, 9)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if limit < 1 || limit > 64 {
			limit = 1 + (limit%64+64)%64
		}
		checkSplit(t, text, limit, SplitMessage(text, limit))
	})
}

// checkSplit asserts the invariants of SplitMessage: parts are non-empty,
// have no whitespace at either end, hold at most limit runes, and, read in
// order, are the input with whitespace removed only between parts and
// around the whole text.
func checkSplit(t *testing.T, text string, limit int, parts []string) {
	t.Helper()
	rest := text
	for i, p := range parts {
		require.NotEmpty(t, p, "part %d", i)
		require.LessOrEqual(t, utf8.RuneCountInString(p), limit, "part %d: %q", i, p)
		require.Equal(t, strings.TrimSpace(p), p, "part %d has whitespace at an end", i)
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		require.True(t, strings.HasPrefix(rest, p), "part %d %q is not next in the input %q", i, p, rest)
		rest = rest[len(p):]
	}
	require.Empty(t, strings.TrimSpace(rest), "text left over after the last part")
}
