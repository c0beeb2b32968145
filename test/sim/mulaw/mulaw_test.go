package mulaw

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodeKnownValues(t *testing.T) {
	// G.711 reference points: zero is 0xFF, full scale positive 0x80,
	// full scale negative 0x00.
	assert.Equal(t, byte(0xFF), Encode(0))
	assert.Equal(t, byte(0x80), Encode(32767))
	assert.Equal(t, byte(0x00), Encode(-32768))
	assert.Equal(t, byte(0x7F), Encode(-1), "-1 rounds to negative zero")
}

func TestVoiced(t *testing.T) {
	assert.False(t, Voiced(Quiet(20)))
	assert.False(t, Voiced([]byte{0x7F, 0xFF}))
	assert.True(t, Voiced(Tone(440, 20)))
}

func TestWriteWAV(t *testing.T) {
	audio := Tone(440, 3) // 24 bytes
	audio = append(audio, 0x55)
	var buf bytes.Buffer
	require.NoError(t, WriteWAV(&buf, audio))
	b := buf.Bytes()
	assert.Equal(t, "RIFF", string(b[0:4]))
	assert.Equal(t, uint32(len(b)-8), binary.LittleEndian.Uint32(b[4:8]))
	assert.Equal(t, "WAVE", string(b[8:12]))
	assert.Equal(t, uint16(7), binary.LittleEndian.Uint16(b[20:22]), "format tag mu-law")
	assert.Equal(t, uint32(8000), binary.LittleEndian.Uint32(b[24:28]))
	assert.Equal(t, "data", string(b[50:54]))
	assert.Equal(t, uint32(len(audio)), binary.LittleEndian.Uint32(b[54:58]))
	assert.Equal(t, audio, b[58:58+len(audio)])
	assert.Zero(t, len(b)%2, "chunks are padded to even length")
}
