package jsonscan

import "encoding/json"

// AppendString appends s to b as a JSON string. Text that needs no escaping
// (base64, ids) is copied as it is; anything else goes through
// encoding/json, with its HTML-safe escaping.
func AppendString[T string | []byte](b []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(string(s)) // a string always marshals
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
