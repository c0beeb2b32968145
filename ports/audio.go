package ports

import "strconv"

// AudioEncoding names how audio samples are encoded.
type AudioEncoding string

// The encodings the gateway carries.
const (
	// EncodingPCMU is G.711 mu-law: one byte a sample (telephony).
	EncodingPCMU AudioEncoding = "pcmu"
	// EncodingPCM16 is signed 16-bit little-endian linear PCM: two bytes a
	// sample.
	EncodingPCM16 AudioEncoding = "pcm16"
)

// AudioFormat is the format of one side's audio: mono samples in Encoding
// at SampleRate. On the ports audio always travels base64-encoded (standard
// alphabet, padded), exactly as the wire protocols carry it, so that audio
// whose two sides share a format passes through untouched.
type AudioFormat struct {
	Encoding   AudioEncoding
	SampleRate int // samples a second: 8000, 16000 or 24000
}

// Mulaw8k is telephony audio: G.711 mu-law at 8 kHz.
var Mulaw8k = AudioFormat{Encoding: EncodingPCMU, SampleRate: 8000}

// BytesPerSample is the size of one sample, or 0 for an unknown encoding.
func (f AudioFormat) BytesPerSample() int {
	switch f.Encoding {
	case EncodingPCMU:
		return 1
	case EncodingPCM16:
		return 2
	}
	return 0
}

// Millis is the duration in milliseconds of n bytes of raw (decoded) audio
// in f, rounded down; 0 for a format it cannot tell.
func (f AudioFormat) Millis(n int) int {
	perMs := f.BytesPerSample() * f.SampleRate
	if perMs == 0 {
		return 0
	}
	return int(int64(n) * 1000 / int64(perMs))
}

func (f AudioFormat) String() string {
	return string(f.Encoding) + "/" + strconv.Itoa(f.SampleRate)
}

// Transcoder converts a stream of audio chunks from one AudioFormat to
// another. It keeps state between chunks (a resampler's filter history),
// so one Transcoder serves one direction of one call, and it is not safe
// for concurrent use.
type Transcoder interface {
	// Transcode appends to dst the base64 encoding of src (base64 audio in
	// the source format) converted to the target format, and returns the
	// extended slice. A chunk that is not valid base64, or not a whole
	// number of samples, gives an error wrapping ErrInvalidInput and
	// changes nothing; a pass-through between two equal formats may
	// append src as it is, unchecked.
	Transcode(dst, src []byte) ([]byte, error)
}

// TranscoderFactory makes a Transcoder from one format to another. It
// returns an error wrapping ErrInvalidInput for a pair it cannot convert.
// Safe for concurrent use.
type TranscoderFactory func(from, to AudioFormat) (Transcoder, error)
