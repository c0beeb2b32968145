package domain_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/convgateway/gateway/domain"
)

func TestTakesTurn(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"", false},
		{"  ...  ", false},
		{"Mm-hmm.", false},
		{"yeah", false},
		{"Okay, okay.", false},
		{"Uh-huh, I see.", false},
		{"All right", false},
		{"Wait", true},
		{"Stop, please", true},
		{"yeah but what about Tuesday?", true},
		{"No.", true},
		{"Can I talk to a person", true},
		{"42", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, domain.TakesTurn(tt.text), "%q", tt.text)
	}
}
