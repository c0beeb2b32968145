// Package audio converts audio between the formats the gateway's two sides
// of a call speak, for when they differ: telephony is G.711 mu-law at
// 8 kHz, and a speech model may want 16-bit linear PCM at another rate.
package audio
