// Package mediastream adapts a Twilio Media Streams WebSocket to
// ports.TelephonyChannel.
//
// Twilio sends JSON text frames (connected, start, media, mark, dtmf, stop)
// whose numeric fields are strings; the channel sends media, mark and clear
// frames addressed with the streamSid learned from start. Audio stays
// base64-encoded mu-law end to end: a media payload is sliced out of the
// frame and checked by a scan (padded standard base64, at most
// MaxMediaPayload), never decoded. The hot path (one media frame in, one
// media and one mark frame out) reuses its buffers and does not go through
// encoding/json.
//
// What is not an event is skipped and counted (Channel.Skipped): malformed
// or unknown frames, binary frames, media whose payload is not audio, and,
// before the start event, anything but connected, start and stop. Skipped
// frames are logged at most once every few seconds per stream; more than
// MaxBadFramesBeforeStart before the start event close the stream with 1008.
package mediastream
