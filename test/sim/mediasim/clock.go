package mediasim

import "time"

// Clock paces playback and streaming. Tests use a faster clock so that
// seconds of audio play in milliseconds.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealTime is the wall clock.
var RealTime Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Faster returns a clock that runs factor times faster than the wall clock:
// a second of audio plays in 1/factor seconds.
func Faster(factor float64) Clock {
	return &fastClock{start: time.Now(), factor: factor}
}

type fastClock struct {
	start  time.Time
	factor float64
}

func (c *fastClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.factor))
}

func (c *fastClock) After(d time.Duration) <-chan time.Time {
	return time.After(time.Duration(float64(d) / c.factor))
}
