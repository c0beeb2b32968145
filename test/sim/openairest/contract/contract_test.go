package contract

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	require.NoError(t, Validate("CreateRunRequest", []byte(`{"assistant_id":"asst_1"}`)))
	assert.Error(t, Validate("CreateRunRequest", []byte(`{}`)), "assistant_id is required")
	assert.Error(t, Validate("CreateRunRequest", []byte(`{"assistant_id":"asst_1","bogus":1}`)), "no additional properties")
	require.NoError(t, Validate("CreateMessageRequest", []byte(`{"role":"user","content":"hi"}`)))
	assert.Error(t, Validate("CreateMessageRequest", []byte(`{"role":"robot","content":"hi"}`)))
	require.NoError(t, Validate("CreateResponse", []byte(`{"model":"gpt-4.1","input":"hi","conversation":"conv_1"}`)))
	assert.Error(t, Validate("CreateResponse", []byte(`{"model":"gpt-4.1","input":"hi","conversation":7}`)))
	require.NoError(t, Validate("CreateConversationBody", []byte(`{}`)))
	assert.Error(t, Validate("NoSuchSchema", []byte(`{}`)))
	assert.Error(t, Validate("CreateRunRequest", []byte(`{`)))
}
