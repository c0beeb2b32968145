package domain

import (
	"strings"
	"unicode"
)

// backchannels are the short acknowledgments a caller says while listening
// ("mm-hmm", "yeah", "okay"): they tell the assistant to go on, not to
// stop. Lower case, punctuation removed.
var backchannels = map[string]bool{
	"mm": true, "mmm": true, "mhm": true, "mm hmm": true, "mmhmm": true, "hmm": true,
	"uh huh": true, "uhhuh": true, "ah": true, "oh": true, "ok": true, "okay": true,
	"yeah": true, "yes": true, "yep": true, "yup": true, "right": true, "sure": true,
	"i see": true, "got it": true, "alright": true, "all right": true, "cool": true,
	"great": true, "nice": true, "wow": true, "really": true, "ja": true, "oui": true, "sí": true, "si": true,
}

// TakesTurn reports whether the caller's words, said while the assistant
// was speaking, take the turn from it: anything but a short acknowledgment
// (a backchannel such as "mm-hmm", "yeah", "okay", alone or repeated) does.
// Empty text takes nothing.
func TakesTurn(text string) bool {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	if len(words) == 0 {
		return false
	}
	// Read the words as a run of backchannels of one or two words each.
	for i := 0; i < len(words); {
		if i+1 < len(words) && backchannels[words[i]+" "+words[i+1]] {
			i += 2
			continue
		}
		if !backchannels[words[i]] {
			return true
		}
		i++
	}
	return false
}
