// Package realtime adapts the OpenAI Realtime API (GA protocol, over
// WebSocket) to ports.SpeechModel.
//
// A session is configured for 8 kHz mu-law (audio/pcmu) in and out, so
// caller audio and assistant audio pass through as base64 without
// transcoding. The audio hot paths (input_audio_buffer.append out,
// response.output_audio.delta in) are built and parsed without
// encoding/json; the other client events are the openai-go v3 realtime
// types.
//
// The call's tools are declared in session.update (function tools, and
// MCP servers as hosted MCP tools, which the API calls itself). A function
// call is reported once its arguments are done; its result goes back as a
// function_call_output item, and the model is asked to go on with it
// (response.create) only when no response is in progress and the caller
// is not speaking.
package realtime
