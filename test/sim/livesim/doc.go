// Package livesim is an OpenAI GPT-Live simulator: a WebSocket server on
// loopback speaking the Live protocol (openai-go v3 package live) closely
// enough for the gateway's live adapter, the end-to-end tests and the demo.
// It imports no test library, so that cmd/ can ship it.
//
// It behaves as the SDK and the guides say GPT-Live does: the client
// connects to /v1/live/sessions without a query string, sends
// session.start first and gets session.started before anything else is
// accepted; the model is full duplex, so there are no speech-started or
// speech-stopped events, no utterance or item ids and no end of its audio;
// transcripts come as deltas on the session timeline; usage is the
// session's cumulative seconds; session.close is answered with
// session.closed, then the socket is closed.
//
// Every client event is checked against the SDK's own types: a type the
// SDK's union of client events does not know, a field its struct does not
// have, or a missing field its `api:"required"` tags ask for is answered
// with an error event (invalid_value, unknown_parameter,
// missing_required_parameter), as the API does; the session goes on.
//
// Scripted, a test drives it through the peer.Speech methods (Say,
// CallerSpeaks, Fail, Hangup, CallTool) and reads what the client sent
// (ToolResults, Commands, Refusals).
//
// Under Responses delegation the session has a backend (backend.go): the
// delegation's function tools are what WaitSession returns; CallTool makes
// it call one as GPT-Live does (session.delegation.created, then the
// Responses stream in response.event, the call a function_call item in
// response.output_item.done); response.item.create of a
// function_call_output and response.create answer it. A result for a call
// it did not make, or a response.create while its response is in progress,
// is refused with an error event. With
// Options.Auto it also behaves on its own: caller audio that is not mu-law
// silence, followed by a pause, is a turn, transcribed and answered with a
// scripted reply in 20 ms chunks (Auto.Turns scripts each turn's words and
// answer), and session.commentary.append (the gateway's Respond) makes it
// speak the reply too, and a response.create after tool results makes it
// speak a reply that says them (SaysResult); caller audio that is not silence while it speaks
// stops its speech, without any event (with Auto.Yield, once it has heard
// that much of it, and the caller's first word is transcribed then).
// Options.OnEvent sees every event it sends, for tools that tell what
// happened (the demo).
//
// Between two utterances without the caller's words in between the model
// pauses (Options.Gap), as a live speaker does; unlike the real model, the
// simulator sends no audio while it is quiet.
package livesim
