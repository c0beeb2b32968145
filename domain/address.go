package domain

import (
	"regexp"
	"strings"
)

// e164 is an E.164 number: "+", a non-zero digit, at most 15 digits in all.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// sipHost is a SIP URI's host and optional port: a domain name or IPv4
// address, or an IPv6 reference in brackets.
var sipHost = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// IsE164 reports whether s is a phone number in E.164 form, such as
// "+15551234567": a "+", then 2 to 15 digits, the first not 0. It is pure.
func IsE164(s string) bool { return e164.MatchString(s) }

// IsSIPAddress reports whether s is a SIP URI Twilio can dial, such as
// "sip:agent@pbx.example.com;transport=tls": "sip:", an optional user and
// "@", a host (a domain name, an IPv4 address or a bracketed IPv6 one)
// with an optional port, then optional ";" parameters and "?" headers;
// no whitespace, control character, angle bracket or quote anywhere. It is
// pure.
func IsSIPAddress(s string) bool {
	rest, ok := strings.CutPrefix(s, "sip:")
	if !ok || strings.ContainsFunc(rest, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(`<>"'`, r)
	}) {
		return false
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		if i == 0 {
			return false // an empty user
		}
		rest = rest[i+1:]
	}
	return sipHost.MatchString(rest)
}
