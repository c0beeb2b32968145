// Package responses implements ports.ChatAssistant with OpenAI's Responses
// API and Conversations API (openai-go v3): a thread is a Conversation
// ("conv_..."), and each reply is one response created in that conversation
// with the configured model and instructions, so OpenAI keeps the history.
//
// A reply's tools are declared in each response: the gateway's tools as
// function tools (strict off: the user's schemas are passed as they are),
// MCP servers as hosted MCP tools, which OpenAI calls itself. When the
// model calls functions, their outputs go back as function_call_output
// items in a new response on the same conversation, until it answers.
package responses
