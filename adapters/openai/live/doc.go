// Package live adapts OpenAI GPT-Live (the Live API over a primary
// WebSocket, openai-go v3 package live) to ports.SpeechModel.
//
// GPT-Live is full duplex: it listens while it speaks, decides itself when
// to speak and when to stop, and reports neither the caller's speech nor
// its own turns. A session therefore reports InterruptedByModel, sends
// nothing for Heard, and names utterances itself.
//
// Utterances: the protocol has no ids, turns or ends for the model's
// speech. Each piece of assistant output (audio or transcript) belongs to
// the current utterance ("u1", "u2", ...), and a new one begins with the
// first piece that follows the start of the session, the caller's words
// (a caller transcript since the assistant's last output), or a pause of
// Pause (800 ms) since the assistant's last voiced audio, counted both as
// silent audio received and as time without audio. A transcript piece that
// comes before its audio (no audio since the previous piece) begins a new
// utterance when it starts more than Pause after the previous one ended on
// the session timeline. Silent audio never begins an utterance but the
// first.
//
// A session is started with session.start: the model, the call's
// instructions, audio/pcmu at 8000 Hz in and out (so that caller and
// assistant audio pass through as base64 without transcoding), the voice,
// and Responses delegation to Options.BackendModel with the call's tools
// as its function tools (a schema passed as written; none: an empty object
// schema). Open returns once the server answers session.started. MCP
// servers are refused before dialling: the SDK's mcp tool of the
// delegation carries only its type, and the configuration is strict.
//
// Tools: GPT-Live delegates a task to the Responses backend, whose stream
// comes nested in response.event. A function_call item in
// response.output_item.done is a SpeechToolCall (call_id, name, arguments;
// once per call_id). ToolResult sends response.item.create with a
// function_call_output at once, then response.create, which continues the
// delegation, when the backend is free: no delegated response in progress
// (from response.created, queued or in_progress to response.completed,
// failed or incomplete) and every call handed over answered, so that
// parallel calls get one response.create. When results wait for the end
// of a response, Recv sends the response.create as that end arrives.
//
// The mapping, client side:
//
//	AppendAudio  -> session.input_audio.append (built without encoding/json)
//	Respond      -> session.commentary.append (delegation_id null): GPT-Live
//	                has no response request; commentary is what it speaks
//	ToolResult   -> response.item.create (function_call_output), then
//	                response.create when the backend is free
//	Heard        -> nothing
//	Close        -> session.close, session.closed awaited (CloseWait), then
//	                the socket is closed
//
// and server side:
//
//	session.output_audio.delta      -> SpeechAudio (parsed without encoding/json)
//	session.output_transcript.delta -> SpeechAssistantText (a piece)
//	session.input_transcript.delta  -> SpeechCallerText (a piece)
//	session.usage.updated           -> SpeechUsage: Usage.Duration, the
//	                                   increment of the cumulative seconds
//	error                           -> SpeechError (fatal: see Recv)
//	response.event                  -> SpeechToolCall for a function_call item
//	                                   done; responses' lifecycle tracked
//	session.closed                  -> the end of the session (with a last
//	                                   SpeechUsage when it reports new usage)
//
// Other events the SDK knows (acknowledgements, delegation events, the
// rest of the Responses stream, decisions) are ignored; malformed ones, and types the SDK does
// not know, are skipped, counted and logged at a bounded rate. No SpeechUtteranceDone, SpeechCallerStarted or
// SpeechCallerStopped is ever sent: the protocol has no such events.
//
// The SDK's own connection (client.Live.Connect) is not used: it sets no
// read limit and ends the whole connection on one malformed frame; the
// session reads the socket itself (adapters/internal/wsstream) and uses
// the SDK's types for the client events it sends.
package live
