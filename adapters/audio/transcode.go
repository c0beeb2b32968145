package audio

import (
	"encoding/base64"
	"fmt"

	"github.com/convgateway/gateway/ports"
)

var _ ports.TranscoderFactory = NewTranscoder

// NewTranscoder returns a ports.Transcoder from one audio format to
// another: each chunk is decoded from base64, from mu-law or PCM16 to
// linear samples, resampled by a Resampler when the rates differ (and so
// delayed by its Delay), encoded and appended to dst in base64.
//
// Both formats must be mu-law or PCM16 at 8000, 16000 or 24000 Hz;
// otherwise it fails with an error wrapping ports.ErrInvalidInput. When
// from == to the Transcoder passes audio through: it appends src to dst
// as it is, without decoding or checking it. NewTranscoder is safe for
// concurrent use; a Transcoder is not.
func NewTranscoder(from, to ports.AudioFormat) (ports.Transcoder, error) {
	for _, f := range []ports.AudioFormat{from, to} {
		if f.BytesPerSample() == 0 || !supportedRate(f.SampleRate) {
			return nil, fmt.Errorf("audio: new transcoder %s to %s: %w: unsupported format %s",
				from, to, ports.ErrInvalidInput, f)
		}
	}
	if from == to {
		return passThrough{}, nil
	}
	t := &transcoder{from: from, to: to, decode: AppendLinearFromMulaw, encode: AppendMulaw}
	if from.Encoding == ports.EncodingPCM16 {
		t.decode = AppendLinearFromPCM16
	}
	if to.Encoding == ports.EncodingPCM16 {
		t.encode = AppendPCM16
	}
	if from.SampleRate != to.SampleRate {
		rs, err := NewResampler(from.SampleRate, to.SampleRate)
		if err != nil {
			return nil, fmt.Errorf("audio: new transcoder %s to %s: %w", from, to, err)
		}
		t.resampler = rs
	}
	return t, nil
}

// passThrough is the Transcoder between two sides of the same format.
type passThrough struct{}

func (passThrough) Transcode(dst, src []byte) ([]byte, error) { return append(dst, src...), nil }

// transcoder converts between two different formats. Its buffers are
// reused from chunk to chunk.
type transcoder struct {
	from, to  ports.AudioFormat
	decode    func(dst []int16, src []byte) []int16 // from's encoding to samples
	encode    func(dst []byte, src []int16) []byte  // samples to to's encoding
	resampler *Resampler                            // nil when the rates are the same

	raw      []byte  // the chunk, decoded from base64
	samples  []int16 // the chunk's samples
	resample []int16 // the samples at the target rate
	encoded  []byte  // the samples in the target encoding
}

// Transcode implements ports.Transcoder. A chunk that is not base64, or
// whose bytes are not a whole number of samples, fails with an error
// wrapping ports.ErrInvalidInput before anything changes: dst is returned
// as it came and the resampler's history is untouched.
func (t *transcoder) Transcode(dst, src []byte) ([]byte, error) {
	raw, err := base64.StdEncoding.AppendDecode(t.raw[:0], src)
	t.raw = raw[:0] // keep the buffer, even a partly filled one
	if err != nil {
		return dst, fmt.Errorf("audio: transcode %s to %s: %w: not base64 (%v)", t.from, t.to, ports.ErrInvalidInput, err)
	}
	if size := t.from.BytesPerSample(); len(raw)%size != 0 {
		return dst, fmt.Errorf("audio: transcode %s to %s: %w: %d bytes is not a whole number of %d-byte samples",
			t.from, t.to, ports.ErrInvalidInput, len(raw), size)
	}

	samples := t.decode(t.samples[:0], raw)
	t.samples = samples[:0]
	if t.resampler != nil {
		samples = t.resampler.Resample(t.resample[:0], samples)
		t.resample = samples[:0]
	}
	encoded := t.encode(t.encoded[:0], samples)
	t.encoded = encoded[:0]
	return base64.StdEncoding.AppendEncode(dst, encoded), nil
}
