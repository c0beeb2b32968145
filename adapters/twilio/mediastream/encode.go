package mediastream

import "github.com/convgateway/gateway/adapters/internal/jsonscan"

// appendMedia appends a media frame carrying the base64 audio as it is.
func appendMedia(b []byte, streamSid string, audio []byte) []byte {
	b = append(b, `{"event":"media","streamSid":`...)
	b = jsonscan.AppendString(b, streamSid)
	b = append(b, `,"media":{"payload":`...)
	b = jsonscan.AppendString(b, audio)
	return append(b, "}}"...)
}

// appendMark appends a mark frame for the mark with sequence number seq
// (appendMarkName).
func appendMark(b []byte, streamSid string, seq uint64) []byte {
	b = append(b, `{"event":"mark","streamSid":`...)
	b = jsonscan.AppendString(b, streamSid)
	b = append(b, `,"mark":{"name":"`...)
	b = appendMarkName(b, seq)
	return append(b, `"}}`...)
}

// appendClear appends a clear frame.
func appendClear(b []byte, streamSid string) []byte {
	b = append(b, `{"event":"clear","streamSid":`...)
	b = jsonscan.AppendString(b, streamSid)
	return append(b, '}')
}
