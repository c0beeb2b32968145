// Package assistants implements ports.ChatAssistant with the OpenAI
// Assistants API v2 (openai-go v3's Beta.Threads, which sends the header
// "OpenAI-Beta: assistants=v2"): a thread is an Assistants thread
// ("thread_..."); a reply adds the user's message, creates a run of the
// configured assistant and polls it until it ends. A reply's tools are the
// run's function tools; a run that requires action gets their outputs
// through submit_tool_outputs. The Assistants API cannot use MCP servers:
// a reply that names any is refused.
//
// OpenAI shut the Assistants API down on 2026-08-26 (openai-go marks it
// deprecated); the package remains for Assistants-compatible endpoints. Use
// package responses against OpenAI itself.
package assistants
