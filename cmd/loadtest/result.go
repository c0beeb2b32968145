package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
)

// result holds the figures of a run; it is written as JSON.
type result struct {
	Calls     int     `json:"calls"`
	Twins     int     `json:"twins"`
	DurationS float64 `json:"duration_s"`
	RampS     float64 `json:"ramp_s"`
	Gateway   string  `json:"gateway"`
	Cores     int     `json:"cores"`
	GoVersion string  `json:"go_version"`

	Held        int      `json:"calls_held"`
	Failures    []string `json:"failures,omitempty"`
	LateFrames  int      `json:"frames_sent_late"` // the generator lagged more than a frame
	ModelErrors int64    `json:"model_errors"`
	// BargeIns counts the truncations the gateway sent the model.
	BargeIns int `json:"barge_ins"`

	CallerToModel frames `json:"caller_to_model"`
	ModelToCaller frames `json:"model_to_caller"`

	// Added latency per frame: its time through the gateway minus its
	// twin's time straight between the simulators, in milliseconds.
	AddedCallerToModel latency `json:"added_latency_caller_to_model_ms"`
	AddedModelToCaller latency `json:"added_latency_model_to_caller_ms"`
	Added              latency `json:"added_latency_ms"`
	// The raw times, for context.
	ThroughGateway latency `json:"through_gateway_ms"`
	Direct         latency `json:"direct_ms"`

	WindowS                 float64 `json:"window_s"`
	CPUSecondsPerCallMinute float64 `json:"gateway_cpu_seconds_per_call_minute"`
	RSSIdleMiB              float64 `json:"gateway_rss_idle_mib"`
	RSSPeakMiB              float64 `json:"gateway_rss_peak_mib"`
	RSSPerCallKiB           float64 `json:"gateway_rss_per_call_kib"`
}

// frames counts one direction's frames on the gateway path.
type frames struct {
	Sent      int `json:"sent"`
	Received  int `json:"received"`
	Lost      int `json:"lost"`
	Reordered int `json:"reordered"`
	// NotPlayed (assistant audio only) are chunks the gateway did not
	// relay because the caller had interrupted their response, or that
	// were in flight when the call ended: by design, not lost.
	NotPlayed int `json:"not_played,omitempty"`
}

// latency summarises a distribution in milliseconds.
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func summarize(us []int32) latency {
	if len(us) == 0 {
		return latency{}
	}
	slices.Sort(us)
	at := func(p float64) float64 { return float64(us[min(len(us)-1, int(p*float64(len(us))))]) / 1000 }
	return latency{N: len(us), P50: at(0.50), P99: at(0.99), Max: float64(us[len(us)-1]) / 1000}
}

// collect computes the figures from the calls' records.
func (r *runner) collect(res *result) {
	var addIn, addOut, through, direct []int32
	for _, c := range r.calls {
		c.mu.Lock()
		if c.held {
			res.Held++
		}
		if c.err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("call %d: %v", c.id, c.err))
		}
		res.LateFrames += c.late

		gw := &c.in[pathGateway]
		for seq, sent := range gw.sent {
			if sent == 0 {
				continue
			}
			res.CallerToModel.Sent++
			arrived := gw.arrived[seq]
			if arrived == 0 {
				res.CallerToModel.Lost++
				continue
			}
			res.CallerToModel.Received++
			through = append(through, arrived-sent)
			if c.twin {
				tw := &c.in[pathDirect]
				if tw.sent[seq] != 0 && tw.arrived[seq] != 0 {
					d := tw.arrived[seq] - tw.sent[seq]
					direct = append(direct, d)
					addIn = append(addIn, (arrived-sent)-d)
				}
			}
		}
		res.CallerToModel.Reordered += gw.reordered

		out := &c.out[pathGateway]
		for resp, row := range out.sent {
			var recvRow []int32
			if resp < len(out.recv) {
				recvRow = out.recv[resp]
			}
			lastRecv := -1
			for i := range recvRow {
				if recvRow[i] != 0 {
					lastRecv = i
				}
			}
			for i, sent := range row {
				if sent == 0 {
					continue
				}
				res.ModelToCaller.Sent++
				var recv int32
				if i < len(recvRow) {
					recv = recvRow[i]
				}
				switch {
				case recv != 0:
					res.ModelToCaller.Received++
					through = append(through, recv-sent)
					if c.twin {
						if d, ok := twinOut(&c.out[pathDirect], resp, i); ok {
							direct = append(direct, d)
							addOut = append(addOut, (recv-sent)-d)
						}
					}
				case i < lastRecv:
					res.ModelToCaller.Lost++ // a hole before a chunk that arrived
				default:
					res.ModelToCaller.NotPlayed++
				}
			}
		}
		res.ModelToCaller.Reordered += out.reordered
		c.mu.Unlock()
	}
	res.ModelErrors = r.modelErrors.Load()
	for _, s := range r.sim.Sessions() {
		if ref, ok := r.sessions.Load(s); ok && ref.(sessionRef).path == pathGateway {
			res.BargeIns += len(s.Heard())
		}
	}
	res.AddedCallerToModel = summarize(slices.Clone(addIn))
	res.AddedModelToCaller = summarize(slices.Clone(addOut))
	res.Added = summarize(append(addIn, addOut...))
	res.ThroughGateway = summarize(through)
	res.Direct = summarize(direct)
}

// twinOut is the twin's time for chunk (resp, i), if it has it.
func twinOut(d *outDir, resp, i int) (int32, bool) {
	if resp >= len(d.sent) || resp >= len(d.recv) || i >= len(d.sent[resp]) || i >= len(d.recv[resp]) {
		return 0, false
	}
	s, r := d.sent[resp][i], d.recv[resp][i]
	return r - s, s != 0 && r != 0
}

// print writes the figures for a reader.
func (res *result) print(w io.Writer) {
	fmt.Fprintf(w, "\ncalls held:               %d of %d", res.Held, res.Calls)
	if n := len(res.Failures); n > 0 {
		fmt.Fprintf(w, " (%d failed; first: %s)", n, res.Failures[0])
	}
	fmt.Fprintln(w)
	p := func(name string, f frames) {
		fmt.Fprintf(w, "%-25s %d sent, %d received, %d lost, %d reordered", name, f.Sent, f.Received, f.Lost, f.Reordered)
		if f.NotPlayed > 0 {
			fmt.Fprintf(w, ", %d not relayed after barge-ins", f.NotPlayed)
		}
		fmt.Fprintln(w)
	}
	p("caller -> model frames:", res.CallerToModel)
	p("model -> caller chunks:", res.ModelToCaller)
	l := func(name string, x latency) {
		fmt.Fprintf(w, "%-25s p50 %.3f ms, p99 %.3f ms, max %.3f ms (%d frames)\n", name, x.P50, x.P99, x.Max, x.N)
	}
	l("added latency, both ways:", res.Added)
	l("  caller -> model:", res.AddedCallerToModel)
	l("  model -> caller:", res.AddedModelToCaller)
	l("through the gateway:", res.ThroughGateway)
	l("direct (twins):", res.Direct)
	fmt.Fprintf(w, "%-25s %d (each a clear and a truncation)\n", "barge-ins:", res.BargeIns)
	fmt.Fprintf(w, "%-25s %d\n", "model error events:", res.ModelErrors)
	if res.LateFrames > 0 {
		fmt.Fprintf(w, "%-25s %d frames went out more than 20 ms late: the load generator was short of CPU\n", "warning:", res.LateFrames)
	}
	fmt.Fprintf(w, "%-25s %.3f CPU seconds per call-minute (over %.0fs with every call up)\n", "gateway CPU:", res.CPUSecondsPerCallMinute, res.WindowS)
	fmt.Fprintf(w, "%-25s idle %.1f MiB, peak %.1f MiB: %.1f KiB per call\n", "gateway memory (RSS):", res.RSSIdleMiB, res.RSSPeakMiB, res.RSSPerCallKiB)
}

// write saves the figures as JSON.
func (res *result) write(path string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
