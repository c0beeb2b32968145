// Package openairest simulates the parts of OpenAI's REST API that the
// gateway's text assistants use, on a loopback httptest server: the
// Conversations and Responses APIs, and the Assistants API v2 (threads,
// messages, runs). Point an adapter at URL() instead of
// https://api.openai.com/v1.
//
// The simulator answers like the real API (objects shaped as documented, so
// openai-go parses them; 401 without the bearer key; 400 on assistants routes
// without "OpenAI-Beta: assistants=v2"; 400 when a message is added to, or a
// run created on, a thread with an active run; 404 for unknown ids). By
// default a reply echoes the user's text ("echo: <text>"); tests script
// replies, delays and failures, make the model call function tools first
// (Script.Tool: function_call output items answered by function_call_output
// inputs, or a run in requires_action answered by submit_tool_outputs),
// delete a conversation or thread (as if it had expired: later requests
// naming it get 404), and inspect the calls and request bodies it received,
// the tool outputs, and any overlapping replies on one thread.
//
// Like the real API it refuses tool outputs that name no waiting call, a
// new message while calls wait for their outputs (Responses; outputs can
// also be added with POST /v1/conversations/{id}/items), and a run's
// outputs that do not answer all its calls at once; the model only calls
// tools the request declares.
//
// A Server is safe for concurrent use.
package openairest
