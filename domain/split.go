package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// SplitMessage splits text into parts of at most limit characters (runes,
// as Twilio counts them) so that a long reply can be sent as several
// messages, in order.
//
// Each cut is made at the last sentence end (".", "!", "?" or "…",
// optionally followed by closing quotes or brackets, then whitespace; or a
// CJK "。", "！", "？"), or line break, that leaves the part at least half the
// limit long; failing that at the last whitespace; failing that (one word longer
// than limit) between two runes. The whitespace at a cut and around the
// whole text is dropped, nothing else: the parts, in order, are the trimmed
// text with only the whitespace at the cut points removed. Parts are never
// empty; text that is empty or only whitespace gives no parts, and short
// text gives one part.
//
// SplitMessage is pure and safe for concurrent use. It panics if limit is
// less than 1.
func SplitMessage(text string, limit int) []string {
	if limit < 1 {
		panic("domain: SplitMessage: limit must be positive")
	}
	var parts []string
	text = strings.TrimSpace(text)
	for text != "" {
		if utf8.RuneCountInString(text) <= limit {
			return append(parts, text)
		}
		cut := cutPoint(text, limit)
		parts = append(parts, strings.TrimRightFunc(text[:cut], unicode.IsSpace))
		text = strings.TrimLeftFunc(text[cut:], unicode.IsSpace)
	}
	return parts
}

// cutPoint returns the byte offset at which to end the first part of text,
// which starts with a non-space rune and is longer than limit runes. The
// part text[:cut] holds at most limit runes and at least one non-space rune.
func cutPoint(text string, limit int) int {
	var (
		n        int  // runes before i
		end      int  // byte offset just after the first limit runes
		sentence int  // last sentence or line end leaving at least limit/2 runes
		word     int  // last whitespace
		afterEnd bool // the runes since the last space end a sentence
	)
	for i, r := range text {
		if n == limit {
			end = i
		}
		if n > limit {
			break
		}
		switch {
		case unicode.IsSpace(r):
			word = i
			if (afterEnd || r == '\n') && 2*n >= limit {
				sentence = i
			}
			afterEnd = false
		case strings.ContainsRune("。！？", r):
			// CJK sentences end without a following space.
			if n < limit && 2*(n+1) >= limit {
				sentence = i + utf8.RuneLen(r)
			}
			afterEnd = true
		case strings.ContainsRune(".!?…", r):
			afterEnd = true
		case !strings.ContainsRune(`"')]»”’`, r):
			afterEnd = false
		}
		n++
	}
	switch {
	case sentence > 0:
		return sentence
	case word > 0:
		return word
	default:
		return end
	}
}
