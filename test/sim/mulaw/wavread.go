package mulaw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// WAV format tags.
const (
	FormatPCM        = 1      // linear PCM
	FormatMulaw      = 7      // G.711 mu-law
	formatExtensible = 0xFFFE // WAVE_FORMAT_EXTENSIBLE: the real tag is in the sub-format
)

// maxWAV bounds what ReadWAV reads: about an hour of 48 kHz 16-bit stereo.
const maxWAV = 1 << 30

// WAV is a WAV file's format and sample data.
type WAV struct {
	Format        int // FormatPCM or FormatMulaw (after resolving an extensible header)
	SampleRate    int
	Channels      int
	BitsPerSample int
	// Data is the data chunk: interleaved samples, little-endian.
	Data []byte
}

// ErrNotWAV: the input is not a RIFF WAVE file.
var ErrNotWAV = errors.New("mulaw: not a WAV file (no RIFF/WAVE header)")

// hint is how to make a file ReadWAV's callers accept.
const hint = "use 16-bit PCM or 8 kHz mono mu-law, e.g. ffmpeg -i in.wav -ar 8000 -ac 1 -c:a pcm_mulaw out.wav"

// ReadWAV reads a WAV file: its fmt chunk (plain or extensible) and its
// data chunk; other chunks (LIST, fact, ...) are skipped. A data chunk
// whose declared size runs past the end (a file cut short, or written by a
// streaming encoder) yields the bytes that are there. It returns ErrNotWAV
// for anything that is not RIFF/WAVE and an error naming the problem for a
// file without fmt or data.
func ReadWAV(r io.Reader) (WAV, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxWAV+1))
	if err != nil {
		return WAV{}, fmt.Errorf("mulaw: read wav: %w", err)
	}
	if len(b) > maxWAV {
		return WAV{}, fmt.Errorf("mulaw: read wav: larger than %d MiB", maxWAV>>20)
	}
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return WAV{}, ErrNotWAV
	}
	var w WAV
	var haveFmt, haveData bool
	for rest := b[12:]; len(rest) >= 8; {
		id, size := string(rest[0:4]), int64(binary.LittleEndian.Uint32(rest[4:8]))
		rest = rest[8:]
		body := rest[:min(size, int64(len(rest)))]
		switch id {
		case "fmt ":
			if err := w.parseFmt(body); err != nil {
				return WAV{}, err
			}
			haveFmt = true
		case "data":
			w.Data = bytes.Clone(body)
			haveData = true
		}
		skip := size + size%2 // chunks are padded to even length
		if skip >= int64(len(rest)) {
			break
		}
		rest = rest[skip:]
	}
	switch {
	case !haveFmt:
		return WAV{}, errors.New("mulaw: read wav: no fmt chunk")
	case !haveData:
		return WAV{}, errors.New("mulaw: read wav: no data chunk")
	}
	return w, nil
}

func (w *WAV) parseFmt(b []byte) error {
	if len(b) < 16 {
		return errors.New("mulaw: read wav: fmt chunk too short")
	}
	w.Format = int(binary.LittleEndian.Uint16(b[0:2]))
	w.Channels = int(binary.LittleEndian.Uint16(b[2:4]))
	w.SampleRate = int(binary.LittleEndian.Uint32(b[4:8]))
	w.BitsPerSample = int(binary.LittleEndian.Uint16(b[14:16]))
	if w.Format == formatExtensible {
		// cbSize(2) validBits(2) channelMask(4) then the sub-format GUID,
		// whose first two bytes are the format tag.
		if len(b) < 26 {
			return errors.New("mulaw: read wav: extensible fmt chunk too short")
		}
		w.Format = int(binary.LittleEndian.Uint16(b[24:26]))
	}
	if w.Channels < 1 || w.SampleRate < 1 {
		return fmt.Errorf("mulaw: read wav: %d channels at %d Hz", w.Channels, w.SampleRate)
	}
	return nil
}

// Duration is how long the audio plays.
func (w WAV) Duration() time.Duration {
	frame := w.Channels * max(w.BitsPerSample/8, 1)
	if frame == 0 || w.SampleRate == 0 {
		return 0
	}
	return time.Duration(len(w.Data)/frame) * time.Second / time.Duration(w.SampleRate)
}

// String describes the format, e.g. "16-bit PCM, 44100 Hz, 2 channels".
func (w WAV) String() string {
	kind := fmt.Sprintf("format %d", w.Format)
	switch w.Format {
	case FormatPCM:
		kind = fmt.Sprintf("%d-bit PCM", w.BitsPerSample)
	case FormatMulaw:
		kind = "mu-law"
	}
	ch := "mono"
	if w.Channels != 1 {
		ch = fmt.Sprintf("%d channels", w.Channels)
	}
	return fmt.Sprintf("%s, %d Hz, %s", kind, w.SampleRate, ch)
}

// Mulaw returns the audio as 8 kHz mono mu-law, what a Twilio media stream
// carries: 8 kHz mono mu-law as it is, 16-bit PCM (and mu-law of another
// rate or channel count) mixed down to mono, resampled to 8 kHz and
// encoded. Other formats are an error saying what to convert to.
func (w WAV) Mulaw() ([]byte, error) {
	switch {
	case w.Format == FormatMulaw && w.BitsPerSample == 8 && w.SampleRate == Rate && w.Channels == 1:
		return bytes.Clone(w.Data), nil
	case w.Format == FormatMulaw && w.BitsPerSample == 8:
		return FromPCM(DecodeAll(w.Data), w.SampleRate, w.Channels), nil
	case w.Format == FormatPCM && w.BitsPerSample == 16:
		samples := make([]int16, len(w.Data)/2)
		for i := range samples {
			samples[i] = int16(binary.LittleEndian.Uint16(w.Data[2*i:]))
		}
		return FromPCM(samples, w.SampleRate, w.Channels), nil
	default:
		return nil, fmt.Errorf("mulaw: %s audio is not supported: %s", w, hint)
	}
}

// WritePCM16WAV writes interleaved 16-bit PCM samples as a WAV file (format
// tag 1), for tests and tools that need PCM input.
func WritePCM16WAV(wr io.Writer, rate, channels int, samples []int16) error {
	n := uint32(2 * len(samples))
	h := make([]byte, 0, 44)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, 4+(8+16)+8+n)
	h = append(h, "WAVE"...)
	h = append(h, "fmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, FormatPCM)
	h = binary.LittleEndian.AppendUint16(h, uint16(channels))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate*channels*2)) // bytes per second
	h = binary.LittleEndian.AppendUint16(h, uint16(channels*2))      // block align
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, n)
	for _, s := range samples {
		h = binary.LittleEndian.AppendUint16(h, uint16(s))
	}
	if _, err := wr.Write(h); err != nil {
		return fmt.Errorf("mulaw: write wav: %w", err)
	}
	return nil
}
