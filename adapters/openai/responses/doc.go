// Package responses implements ports.ChatAssistant with OpenAI's Responses
// API and Conversations API (openai-go v3): a thread is a Conversation
// ("conv_..."), and each reply is one response created in that conversation
// with the configured model and instructions, so OpenAI keeps the history.
package responses
