package main

import (
	"math"
	"math/rand/v2"

	"github.com/convgateway/gateway/test/sim/mulaw"
)

// vowels are formant pairs (F1, F2 in Hz) of a few vowels: what makes a
// buzz sound like "ah", "ee" or "oo".
var vowels = [][2]float64{{730, 1090}, {270, 2290}, {300, 870}, {530, 1840}, {570, 840}, {660, 1720}}

// voice makes about ms milliseconds of speech-like 8 kHz mu-law: words of
// two or three voiced syllables at pitch f0 with gliding intonation, each
// syllable a vowel, words separated by short pauses (well under the
// 400 ms that end a turn). The same seed gives the same audio.
func voice(seed uint64, f0 float64, ms int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	total := ms * mulaw.Rate / 1000
	pcm := make([]int16, 0, total)
	phase := 0.0
	for len(pcm) < total {
		syllables := 2 + rng.IntN(2)
		for s := 0; s < syllables && len(pcm) < total; s++ {
			n := min((110+rng.IntN(120))*mulaw.Rate/1000, total-len(pcm))
			f1, f2 := vowels[rng.IntN(len(vowels))][0], vowels[rng.IntN(len(vowels))][1]
			rise := (rng.Float64() - 0.5) * 0.25 // the pitch glides up or down a little
			for i := range n {
				x := float64(i) / float64(n)
				f := f0 * (1 + rise*x)
				phase += 2 * math.Pi * f / mulaw.Rate
				var v float64
				for k := 1; float64(k)*f < 3400; k++ {
					h := float64(k) * f
					amp := 1/(1+sq((h-f1)/90)) + 0.6/(1+sq((h-f2)/140))
					v += amp * math.Sin(float64(k)*phase)
				}
				env := math.Pow(math.Sin(math.Pi*x), 0.6)
				pcm = append(pcm, int16(max(-32000, min(32000, 3500*env*v))))
			}
		}
		gap := min((40+rng.IntN(90))*mulaw.Rate/1000, total-len(pcm))
		pcm = append(pcm, make([]int16, gap)...)
	}
	return mulaw.EncodeAll(pcm)
}

func sq(x float64) float64 { return x * x }
