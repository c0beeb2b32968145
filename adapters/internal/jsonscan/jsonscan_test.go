package jsonscan

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestObjectWalksNestedValues(t *testing.T) {
	doc := []byte(` { "a" : {"x":[1,{"}":"]"}]}, "b":"q\"uote", "c":-1.5e3 ,"d":null}`)
	require.True(t, json.Valid(doc))
	it, ok := Object(doc)
	require.True(t, ok)
	got := map[string]string{}
	for k, v, ok := it.Next(); ok; k, v, ok = it.Next() {
		got[string(k)] = string(v)
	}
	assert.Equal(t, map[string]string{
		"a": `{"x":[1,{"}":"]"}]}`, "b": `"q\"uote"`, "c": "-1.5e3", "d": "null",
	}, got)

	s, ok := String([]byte(`"q\"uote"`))
	require.True(t, ok)
	assert.Equal(t, `q"uote`, string(s))
	n, ok := Int([]byte(`"42"`))
	require.True(t, ok)
	assert.Equal(t, int64(42), n)
	_, ok = Int([]byte(`"-4"`))
	assert.False(t, ok)
}

// FuzzAppendString checks that any text comes back intact through
// encoding/json.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "AAAA+/==", `a"b\c`, "\x00\u2028<>&", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString([]byte("x"), s)
		var back string
		require.NoError(t, json.Unmarshal(b[1:], &back))
		want, _ := json.Marshal(s)
		var norm string
		require.NoError(t, json.Unmarshal(want, &norm)) // invalid UTF-8 becomes U+FFFD either way
		assert.Equal(t, norm, back)
	})
}
