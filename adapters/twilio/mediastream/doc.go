// Package mediastream adapts a Twilio Media Streams WebSocket to
// ports.TelephonyChannel.
//
// Twilio sends JSON text frames (connected, start, media, mark, dtmf, stop)
// whose numeric fields are strings; the channel sends media, mark and clear
// frames addressed with the streamSid learned from start. Audio stays
// base64-encoded mu-law end to end: a media payload is sliced out of the
// frame, never decoded. The hot path (one media frame in, one media and one
// mark frame out) reuses its buffers and does not go through encoding/json.
package mediastream
