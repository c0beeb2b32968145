// Package tools holds what the OpenAI chat adapters (responses, assistants)
// share about the tools a model calls: checking a request's tools, their
// parameters as a JSON Schema object, running one round of calls in
// parallel, and the text the model reads for a result.
package tools
