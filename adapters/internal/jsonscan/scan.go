package jsonscan

import "encoding/json"

// Fields iterates over the members of one JSON object.
type Fields struct {
	b []byte
	i int
}

// Object starts iterating over the object v, which must be part of JSON
// that json.Valid accepted. ok is false when v is not an object.
func Object(v []byte) (f Fields, ok bool) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return Fields{}, false
	}
	return Fields{b: v, i: i + 1}, true
}

// Next returns the next member: its raw key (without quotes, escapes left
// as they are) and its raw value. ok is false after the last member.
func (f *Fields) Next() (key, val []byte, ok bool) {
	b := f.b
	i := skipSpace(b, f.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		return nil, nil, false
	}
	end := skipString(b, i)
	key = b[i+1 : end-1]
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return nil, nil, false
	}
	i = skipSpace(b, i+1)
	end = skipValue(b, i)
	val = b[i:end]
	f.i = end
	return key, val, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// String returns the content of the JSON string v. Strings without
// escapes are returned as a slice of v; the rare escaped one is unescaped
// into a new slice. ok is false when v is not a string.
func String(v []byte) (s []byte, ok bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	inner := v[1 : len(v)-1]
	for _, c := range inner {
		if c == '\\' {
			var str string
			if json.Unmarshal(v, &str) != nil {
				return nil, false
			}
			return []byte(str), true
		}
	}
	return inner, true
}

// Int parses a non-negative decimal integer given as a JSON number or, as
// Twilio sends its numbers, as a string ("sequenceNumber":"2").
func Int(v []byte) (n int64, ok bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
