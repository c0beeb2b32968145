// Package rest holds what the OpenAI REST adapters (responses, assistants)
// share: building an openai-go client from their options, and translating
// its errors into the ports error vocabulary without leaking secrets.
package rest
