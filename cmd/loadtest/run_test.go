package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunSmallLoad runs a few calls through a gateway inside the test
// process and checks the figures hold together: every frame sent is
// counted as received or lost, twins give an added latency, barge-ins
// happen, and the JSON file says the same as the report.
func TestRunSmallLoad(t *testing.T) {
	out := filepath.Join(t.TempDir(), "load.json")
	var stdout bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, []string{"-gateway", "", "-calls", "4", "-twins", "2", "-duration", "5s", "-progress", "0", "-out", out}, &stdout)
	require.NoError(t, err, stdout.String())

	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var res result
	require.NoError(t, json.Unmarshal(b, &res))
	assert.Equal(t, 4, res.Calls)
	assert.Equal(t, 4, res.Held, "failures: %v", res.Failures)
	assert.Empty(t, res.Failures)
	assert.Equal(t, 4*250, res.CallerToModel.Sent, "5 s of 20 ms frames per call")
	assert.Equal(t, res.CallerToModel.Sent, res.CallerToModel.Received+res.CallerToModel.Lost)
	assert.Zero(t, res.CallerToModel.Lost)
	assert.Zero(t, res.CallerToModel.Reordered)
	assert.Positive(t, res.ModelToCaller.Received, "the assistant answered")
	assert.Equal(t, res.ModelToCaller.Sent, res.ModelToCaller.Received+res.ModelToCaller.Lost+res.ModelToCaller.NotPlayed)
	assert.Zero(t, res.ModelToCaller.Lost)
	assert.Zero(t, res.ModelErrors, "no truncation beyond the audio, no cancel without a response")
	assert.GreaterOrEqual(t, res.BargeIns, 4, "the script talks over the assistant in every call")
	assert.Equal(t, 2*250, res.AddedCallerToModel.N, "every twin frame is paired")
	assert.Positive(t, res.AddedModelToCaller.N)
	assert.Positive(t, res.CPUSecondsPerCallMinute)
	assert.Positive(t, res.RSSPeakMiB)
	assert.Contains(t, stdout.String(), "calls held:               4 of 4")
	assert.Contains(t, stdout.String(), "figures written to "+out)
}

func TestParseRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-calls", "0"},
		{"-calls", "70000"},
		{"-duration", "1s"},
		{"-twins", "-1"},
		{"-nope"},
	} {
		_, err := parse(args, &bytes.Buffer{})
		assert.Error(t, err, strings.Join(args, " "))
	}
	o, err := parse([]string{"-calls", "10", "-twins", "50"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, 10, o.twins, "twins are capped at the calls")
	assert.Equal(t, 500*time.Millisecond, o.ramp, "20 calls a second")
}

func TestMissingBinaryIsAClearError(t *testing.T) {
	err := run(context.Background(), []string{"-gateway", filepath.Join(t.TempDir(), "nope"), "-calls", "1", "-duration", "2s"}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "go build -o bin/gateway ./cmd/gateway")
}

func TestMarkers(t *testing.T) {
	frame := bytes.Repeat([]byte{0x10}, frameBytes)
	for _, tc := range []struct{ call, path, seq int }{{0, 0, 0}, {65535, 1, 1<<32 - 1}, {1234, 0, 98765}} {
		stampIn(frame, tc.call, tc.path, tc.seq)
		call, path, seq, ok := readIn([]byte(base64.StdEncoding.EncodeToString(frame)))
		require.True(t, ok)
		assert.Equal(t, tc, struct{ call, path, seq int }{call, path, seq})
	}
	_, _, _, ok := readIn([]byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x10}, frameBytes))))
	assert.False(t, ok, "a frame without a marker")

	raw := make([]byte, frameBytes)
	stampOut(raw, 300, 99)
	resp, idx, ok := readOut([]byte(base64.StdEncoding.EncodeToString(raw)))
	require.True(t, ok)
	assert.Equal(t, [2]int{300, 99}, [2]int{resp, idx})
	_, _, ok = readOut([]byte(base64.StdEncoding.EncodeToString(make([]byte, frameBytes))))
	assert.False(t, ok)
}

func TestScriptHasBargeIns(t *testing.T) {
	// Speech, a pause long enough for the answer to start, then speech
	// while it plays.
	assert.True(t, voiced(0))
	assert.False(t, voiced(speak1End))
	assert.True(t, voiced(speak2Start))
	assert.False(t, voiced(speak2End))
	assert.True(t, voiced(cycleFrames))
}
