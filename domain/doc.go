// Package domain is the gateway's core: a conversation between a caller and
// the assistant, made of turns, and the playback accounting that decides
// what to do when the caller talks over the assistant (an Interruption), and
// the forms of the addresses a call can be sent to (IsE164, IsSIPAddress).
//
// The package is pure: standard library only, no I/O and no clock reads. It
// computes from media time only: the caller's media positions, and the
// milliseconds of assistant audio handed to the caller and reported played.
// Its types are not safe for concurrent use: one goroutine owns a call's
// Conversation and feeds it events.
package domain
