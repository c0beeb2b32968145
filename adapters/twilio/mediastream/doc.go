// Package mediastream adapts a Twilio Media Streams WebSocket to
// ports.TelephonyChannel.
//
// Twilio sends JSON text frames (connected, start, media, mark, dtmf, stop)
// whose numeric fields are strings; the channel sends media, mark and clear
// frames addressed with the streamSid learned from start. Stream sids,
// sequence numbers, marks and close codes stay in this package: the
// channel's events are the port's.
//
//   - start is CallStarted: callSid is the CallInfo's CallID and the
//     customParameters its Params, except "from" and "to", which, when the
//     answer passes them (Twilio's start frame has no numbers of its own),
//     become From and To.
//   - media is CallAudio: its timestamp is MediaMs.
//   - dtmf is CallKey; stop is CallHungUp; connected is dropped.
//   - Play sends a media frame and a mark named "m" and a sequence number;
//     Twilio echoes a mark when the audio before it has played, and echoes
//     the marks pending at a clear right after it. An echo is CallPlayed,
//     with the milliseconds of audio given to Play up to that mark (8 bytes
//     of mu-law a millisecond, counted from the length of the base64).
//   - End closes the WebSocket with 1008 (policy violation) for
//     ports.EndRefused and 1000 otherwise.
//
// Audio stays base64-encoded mu-law end to end: a media payload is sliced
// out of the frame and checked by a scan (padded standard base64, at most
// MaxMediaPayload), never decoded. The hot path (one media frame in, one
// media and one mark frame out, one mark echo in) reuses its buffers and
// does not go through encoding/json.
//
// What is not an event is skipped and counted (Channel.Skipped): malformed
// or unknown frames, binary frames, media whose payload is not audio,
// echoes of marks the channel did not send (or that were echoed already),
// and, before the start event, anything but connected, start and stop.
// Skipped frames are logged at most once every few seconds per stream;
// more than MaxBadFramesBeforeStart before the start event close the
// stream with 1008.
package mediastream
