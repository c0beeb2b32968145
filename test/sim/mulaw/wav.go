package mulaw

import (
	"encoding/binary"
	"fmt"
	"io"
)

// WriteWAV writes mu-law audio (8 kHz, mono) as a WAV file with format tag
// 7 (WAVE_FORMAT_MULAW), which common players read without conversion.
func WriteWAV(w io.Writer, mulaw []byte) error {
	n := uint32(len(mulaw))
	pad := n % 2
	h := make([]byte, 0, 58)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, 4+(8+18)+(8+4)+8+n+pad)
	h = append(h, "WAVE"...)
	h = append(h, "fmt "...)
	h = binary.LittleEndian.AppendUint32(h, 18)
	h = binary.LittleEndian.AppendUint16(h, 7)    // WAVE_FORMAT_MULAW
	h = binary.LittleEndian.AppendUint16(h, 1)    // channels
	h = binary.LittleEndian.AppendUint32(h, 8000) // sample rate
	h = binary.LittleEndian.AppendUint32(h, 8000) // bytes per second
	h = binary.LittleEndian.AppendUint16(h, 1)    // block align
	h = binary.LittleEndian.AppendUint16(h, 8)    // bits per sample
	h = binary.LittleEndian.AppendUint16(h, 0)    // no extension
	h = append(h, "fact"...)
	h = binary.LittleEndian.AppendUint32(h, 4)
	h = binary.LittleEndian.AppendUint32(h, n) // samples
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, n)
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("mulaw: write wav header: %w", err)
	}
	if _, err := w.Write(mulaw); err != nil {
		return fmt.Errorf("mulaw: write wav data: %w", err)
	}
	if pad == 1 {
		if _, err := w.Write([]byte{0}); err != nil {
			return fmt.Errorf("mulaw: write wav data: %w", err)
		}
	}
	return nil
}
