// Package realtimesim is an OpenAI Realtime API simulator: a WebSocket
// server on loopback speaking the GA protocol closely enough for the
// gateway's realtime adapter, the end-to-end tests, the demo and the load
// test.
//
// Scripted, a test drives it: Say (or SayAs, with ids of the test's
// choosing) streams a response, CallTool streams a response that calls a
// function, CallerSpeaks reports a caller's turn and its transcript,
// StartSpeech reports caller speech, Fail sends an error, Hangup closes.
// It records what clients sent (session configuration with its tools,
// audio frames in order, response requests, truncations, cancels, tool
// results) and answers like the real API where the gateway depends on it:
// an OpenAI-Beta header is refused (error beta_api_shape_disabled, close
// 4000); response.cancel without an active response, response.create while
// one is active (conversation_already_has_active_response), a truncation
// of an unknown item or beyond the item's audio, a function_call_output
// for a call the model never made are errors.
//
// With Options.Auto it also behaves on its own: caller audio that is not
// mu-law silence, followed by a pause, is a turn (speech_started,
// speech_stopped, a transcript) answered with a scripted reply streamed in
// 20 ms chunks; caller audio during a reply is a barge-in that cancels it;
// response.create is answered with the reply, which can say the outputs
// of the tool results just given (Auto.SayToolOutputs).
//
// A Server implements peer.Speech. The package links no test library: it
// ships in the demo and load-test binaries.
package realtimesim
