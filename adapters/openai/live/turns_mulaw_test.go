package live

import (
	"testing"

	"github.com/convgateway/gateway/adapters/audio"
)

// The pause rule's magnitude matches the codec's decoding for every code.
func TestMulawMagnitude(t *testing.T) {
	for c := range 256 {
		want := int(audio.MulawToLinear(byte(c)))
		if want < 0 {
			want = -want
		}
		if got := mulawMagnitude(byte(c)); got != want {
			t.Fatalf("code %#02x: magnitude %d, want %d", c, got, want)
		}
	}
}
