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
// replies, delays and failures, delete a conversation or thread (as if it
// had expired: later requests naming it get 404), and inspect the calls
// and request bodies it received and any overlapping replies on one
// thread.
//
// A Server is safe for concurrent use.
package openairest
