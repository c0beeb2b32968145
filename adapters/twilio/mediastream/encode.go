package mediastream

import "encoding/json"

// appendMedia appends a media frame carrying the base64 audio as it is.
func appendMedia(b []byte, streamSid string, audio []byte) []byte {
	b = append(b, `{"event":"media","streamSid":`...)
	b = appendString(b, streamSid)
	b = append(b, `,"media":{"payload":`...)
	b = appendString(b, audio)
	return append(b, "}}"...)
}

// appendMark appends a mark frame.
func appendMark(b []byte, streamSid, name string) []byte {
	b = append(b, `{"event":"mark","streamSid":`...)
	b = appendString(b, streamSid)
	b = append(b, `,"mark":{"name":`...)
	b = appendString(b, name)
	return append(b, "}}"...)
}

// appendClear appends a clear frame.
func appendClear(b []byte, streamSid string) []byte {
	b = append(b, `{"event":"clear","streamSid":`...)
	b = appendString(b, streamSid)
	return append(b, '}')
}

// appendString appends s as a JSON string. Base64 text and Twilio sids need
// no escaping and are copied as they are; anything else goes through
// encoding/json.
func appendString[T string | []byte](b []byte, s T) []byte {
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
