// Package audio converts audio between the formats the gateway's two sides
// of a call speak, for when they differ: telephony is G.711 mu-law at
// 8 kHz, and a speech model may want 16-bit linear PCM at 16 or 24 kHz.
// NewTranscoder (a ports.TranscoderFactory) builds the converter the call
// bridge puts between the two sides; the pieces it is made of are exported
// too:
//
//   - MulawToLinear and LinearToMulaw: G.711 mu-law, bit-exact with ITU-T
//     G.191's reference (decoding by a 256-entry table), and slice helpers
//     for mu-law and 16-bit little-endian PCM;
//   - Resampler: a streaming polyphase resampler between 8000, 16000 and
//     24000 Hz, in all six directions, for mono 16-bit samples.
//
// # Streaming and state
//
// Audio arrives in chunks (20 ms frames from Twilio, deltas of any size
// from a model). A Resampler, and so a Transcoder between two rates, keeps
// the last input samples of a chunk as the filter's history for the next:
// a signal converted in chunks of any sizes comes out exactly as it does
// converted whole, sample for sample. Each chunk's output is produced at
// once; nothing is held back for a later chunk: after n input samples in
// all, ceil(n*to/from) output samples have come out. Converting between
// encodings at one rate needs no state.
//
// # Delay
//
// The resampling filter is a linear-phase FIR low-pass (a Kaiser-windowed
// sinc, flat to within 0.002 dB up to 85% of the lower rate's Nyquist
// frequency, at least 79 dB down from that Nyquist frequency up), so the
// output is the input delayed by a fixed number of output samples,
// Resampler.Delay, the same at every frequency; the first Delay samples of
// a stream are the filter filling from silence. The delays are:
//
//	8000 -> 16000 Hz:  67 samples  (4.19 ms)
//	8000 -> 24000 Hz: 101 samples  (4.21 ms)
//	16000 -> 8000 Hz:  34 samples  (4.25 ms)
//	24000 -> 8000 Hz:  34 samples  (4.25 ms)
//	16000 -> 24000 Hz: 51 samples  (2.13 ms)
//	24000 -> 16000 Hz: 34 samples  (2.13 ms)
//
// Playback accounting in milliseconds of media (what the caller heard) is
// unaffected in the long run: the output's length follows the input's
// duration exactly, the delay only shifts where the sound sits in it.
//
// # Errors, concurrency and cost
//
// A chunk that is not base64, or not a whole number of samples, is refused
// with an error wrapping ports.ErrInvalidInput and changes nothing; only a
// pass-through Transcoder, between two sides of one format, checks
// nothing. Formats or rates other than the above are refused by the
// constructors the same way. NewTranscoder is safe for concurrent use; a
// Transcoder or a Resampler is not: each serves one direction of one call.
// They design their filter when they are made (tens of microseconds) and,
// once they have seen their largest chunk, allocate nothing while
// converting but what the caller's dst needs to grow.
package audio
