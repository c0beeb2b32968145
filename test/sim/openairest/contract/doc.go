// Package contract validates JSON against the schemas of OpenAI's published
// OpenAPI description (a subset, embedded: openai-openapi-subset.json, as
// OpenAI publishes it). Tests use it to check that what an
// adapter sends, or what a simulator answers, has the documented shape.
package contract
