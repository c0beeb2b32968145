package mulaw

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadWAVMulawIsUsedAsItIs(t *testing.T) {
	audio := append(Tone(440, 100), 0x42) // odd length: padded chunk
	var buf bytes.Buffer
	require.NoError(t, WriteWAV(&buf, audio))
	w, err := ReadWAV(&buf)
	require.NoError(t, err)
	assert.Equal(t, WAV{Format: FormatMulaw, SampleRate: 8000, Channels: 1, BitsPerSample: 8, Data: audio}, w)
	assert.Equal(t, "mu-law, 8000 Hz, mono", w.String())
	assert.Equal(t, 100*time.Millisecond+125*time.Microsecond, w.Duration(), "801 samples")
	got, err := w.Mulaw()
	require.NoError(t, err)
	assert.Equal(t, audio, got, "8 kHz mono mu-law is streamed byte for byte")
}

func TestReadWAVPCM(t *testing.T) {
	samples := sine(440, 44100, 2*4410, 8000) // 100 ms, stereo frames
	var buf bytes.Buffer
	require.NoError(t, WritePCM16WAV(&buf, 44100, 2, samples))
	w, err := ReadWAV(&buf)
	require.NoError(t, err)
	assert.Equal(t, FormatPCM, w.Format)
	assert.Equal(t, "16-bit PCM, 44100 Hz, 2 channels", w.String())
	assert.Equal(t, 100*time.Millisecond, w.Duration())
	got, err := w.Mulaw()
	require.NoError(t, err)
	assert.Equal(t, FromPCM(samples, 44100, 2), got)
	assert.Len(t, got, 800)
}

// riff builds a RIFF WAVE file from chunks given as id, body pairs.
func riff(chunks ...any) []byte {
	var body []byte
	for i := 0; i < len(chunks); i += 2 {
		id, data := chunks[i].(string), chunks[i+1].([]byte)
		body = append(body, id...)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(data)))
		body = append(body, data...)
		if len(data)%2 == 1 {
			body = append(body, 0)
		}
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...)
	return append(append(out, "WAVE"...), body...)
}

func fmtChunk(tag, channels, rate, bits int, ext []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(tag))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(bits))
	return append(b, ext...)
}

func TestReadWAVSkipsOtherChunksAndReadsExtensible(t *testing.T) {
	// WAVE_FORMAT_EXTENSIBLE: cbSize 22, valid bits, channel mask, then
	// the KSDATAFORMAT_SUBTYPE_PCM GUID, which starts with tag 1.
	ext := []byte{22, 0, 16, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71}
	pcm := binary.LittleEndian.AppendUint16(nil, 1000)
	pcm = binary.LittleEndian.AppendUint16(pcm, 3000)
	file := riff("LIST", []byte("INFOodd"), "fmt ", fmtChunk(0xFFFE, 2, 8000, 16, ext), "data", pcm)
	w, err := ReadWAV(bytes.NewReader(file))
	require.NoError(t, err)
	assert.Equal(t, FormatPCM, w.Format)
	assert.Equal(t, 2, w.Channels)
	got, err := w.Mulaw()
	require.NoError(t, err)
	assert.Equal(t, []byte{Encode(2000)}, got, "the two channels mixed")
}

func TestReadWAVDataCutShort(t *testing.T) {
	file := riff("fmt ", fmtChunk(FormatMulaw, 1, 8000, 8, nil))
	file = append(file, "data"...)
	file = binary.LittleEndian.AppendUint32(file, 0xFFFFFFFF) // a streaming encoder's "unknown"
	file = append(file, 1, 2, 3)
	w, err := ReadWAV(bytes.NewReader(file))
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2, 3}, w.Data)
}

func TestReadWAVErrors(t *testing.T) {
	_, err := ReadWAV(bytes.NewReader([]byte("ID3\x03 not a wav at all")))
	assert.ErrorIs(t, err, ErrNotWAV)

	_, err = ReadWAV(bytes.NewReader(riff("data", []byte{1, 2})))
	assert.ErrorContains(t, err, "no fmt chunk")

	_, err = ReadWAV(bytes.NewReader(riff("fmt ", fmtChunk(FormatPCM, 1, 8000, 16, nil))))
	assert.ErrorContains(t, err, "no data chunk")

	_, err = ReadWAV(bytes.NewReader(riff("fmt ", []byte{1, 0, 1}, "data", []byte{})))
	assert.ErrorContains(t, err, "fmt chunk too short")

	for _, tc := range []struct {
		tag, bits int
		want      string
	}{
		{FormatPCM, 24, "24-bit PCM"},
		{FormatPCM, 8, "8-bit PCM"},
		{3, 32, "format 3"}, // IEEE float
		{6, 8, "format 6"},  // A-law
	} {
		w, err := ReadWAV(bytes.NewReader(riff("fmt ", fmtChunk(tc.tag, 1, 8000, tc.bits, nil), "data", []byte{0, 0, 0, 0, 0, 0})))
		require.NoError(t, err)
		_, err = w.Mulaw()
		assert.ErrorContains(t, err, tc.want+", 8000 Hz, mono audio is not supported")
		assert.ErrorContains(t, err, "use 16-bit PCM or 8 kHz mono mu-law")
	}
}

func TestMulawOfAnotherRateIsConverted(t *testing.T) {
	// mu-law at 16 kHz stereo: decoded, mixed, resampled, re-encoded.
	tone := EncodeAll(sine(300, 16000, 3200, 8000))
	w := WAV{Format: FormatMulaw, SampleRate: 16000, Channels: 2, BitsPerSample: 8, Data: tone}
	got, err := w.Mulaw()
	require.NoError(t, err)
	assert.Len(t, got, 800)
	assert.True(t, Voiced(got))
}
