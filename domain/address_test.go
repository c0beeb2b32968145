package domain_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/convgateway/gateway/domain"
)

func TestIsE164(t *testing.T) {
	for _, s := range []string{"+15551234567", "+442071838750", "+12", "+123456789012345"} {
		assert.True(t, domain.IsE164(s), s)
	}
	for _, s := range []string{"", "+", "+1", "15551234567", "+05551234567", "+1234567890123456", "+1 555 123", "+1555x", "whatsapp:+15551234567", "sip:+15551234567@x.com"} {
		assert.False(t, domain.IsE164(s), s)
	}
}

func TestIsSIPAddress(t *testing.T) {
	for _, s := range []string{
		"sip:agent@pbx.example.com",
		"sip:pbx.example.com",
		"sip:+15551234567@trunk.example.com:5061;transport=tls",
		"sip:agent@203.0.113.7",
		"sip:agent@[2001:db8::1]:5060",
		"sip:agent@pbx.example.com?X-Ticket=42",
	} {
		assert.True(t, domain.IsSIPAddress(s), s)
	}
	for _, s := range []string{
		"", "sip:", "sip:agent@", "sip:@pbx.example.com", "SIP:agent@pbx.example.com", "sips:agent@pbx.example.com",
		"tel:+15551234567", "+15551234567", "sip:agent@pbx example.com", "sip:agent@pbx.example.com\n",
		"sip:agent@-pbx.example.com", "sip:agent@pbx.example.com:port", `sip:a"b@pbx.example.com`,
		"sip:agent@pbx.example.com</Sip><Number>+1900", "sip:agent@pbx_example.com",
	} {
		assert.False(t, domain.IsSIPAddress(s), s)
	}
}
