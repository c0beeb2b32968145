// Package metrics keeps the gateway's Prometheus metrics and serves them in
// the Prometheus text format. Its methods are what the use cases' hooks and
// the HTTP server's request observer call (app/wire connects them); they
// are safe for concurrent use and cheap: a counter or histogram update each.
//
// Every label has a small, fixed set of values (end reasons, outcomes,
// error codes, routes), never a call sid or a phone number.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "gateway"

// Metrics are the gateway's metrics, in their own registry (with the Go
// runtime's and the process's). Create them with New.
type Metrics struct {
	reg *prometheus.Registry

	callsActive    prometheus.Gauge
	callsEnded     *prometheus.CounterVec
	streamsRefused *prometheus.CounterVec
	bargeIns       prometheus.Counter
	frames         *prometheus.CounterVec
	firstAudio     prometheus.Histogram
	callDuration   prometheus.Histogram
	requests       *prometheus.HistogramVec
	messages       *prometheus.CounterVec
	assistant      *prometheus.HistogramVec
	openaiErrors   *prometheus.CounterVec
	tokens         *prometheus.CounterVec
	speechSeconds  prometheus.Counter
	toolRuns       *prometheus.HistogramVec
}

// New registers the gateway's metrics.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.callsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "calls_active",
		Help: "Phone calls being bridged now.",
	})
	m.callsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "calls_total",
		Help: "Phone calls ended, by end reason (caller_hangup, stream_closed, model_session_limit, model_fatal_error, shutdown, ...).",
	}, []string{"end_reason"})
	m.streamsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "media_streams_refused_total",
		Help: "Media streams closed before their call began, by reason (invalid_token, expired_token, no_start, token_store_unavailable, model_unavailable).",
	}, []string{"reason"})
	m.bargeIns = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "barge_ins_total",
		Help: "Times a caller talked over the assistant: its audio was cleared (and, with Realtime, the answer truncated where it was heard).",
	})
	m.frames = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "audio_frames_total",
		Help: "Audio frames of ended calls: relayed caller to model, relayed model to caller, or dropped (assistant audio of an interrupted response).",
	}, []string{"direction"})
	m.firstAudio = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "first_audio_seconds",
		Help:    "Time from a media stream's start to the first assistant audio sent to the caller.",
		Buckets: []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10},
	})
	m.callDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "call_duration_seconds",
		Help:    "Length of ended calls, from the start event.",
		Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600},
	})
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "Time to answer HTTP requests (webhooks included), by route and status code. Media streams are not counted: they last a call.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15},
	}, []string{"route", "code"})
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "messages_total",
		Help: "Incoming WhatsApp/SMS messages, by outcome (inline, later, duplicate, unsupported, unavailable, closing, invalid, gone).",
	}, []string{"outcome"})
	m.assistant = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "assistant_duration_seconds",
		Help:    "Time the chat assistant took to answer a message, by result (ok or error).",
		Buckets: []float64{0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60},
	}, []string{"result"})
	m.openaiErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "openai_errors_total",
		Help: "Errors from OpenAI, by API (the speech backend: realtime or live; or chat) and code (the speech model's error code or type; for chat: rejected, unavailable, assistant_failed or other).",
	}, []string{"api", "code"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "openai_tokens_total",
		Help: "Tokens used by ended calls, as the speech model reported them (Realtime: response.done), by kind (input, output).",
	}, []string{"kind"})
	m.toolRuns = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "tool_run_seconds",
		Help:    "Tool runs by tool and outcome (ok, error, timeout, refused): their count and duration.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10, 30},
	}, []string{"tool", "outcome"})
	m.speechSeconds = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "openai_speech_seconds_total",
		Help: "Session time of ended calls, as a speech model billed by duration reported it (GPT-Live: session.usage.updated).",
	})

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.callsActive, m.callsEnded, m.streamsRefused, m.bargeIns, m.frames, m.firstAudio, m.callDuration,
		m.requests, m.messages, m.assistant, m.openaiErrors, m.tokens, m.speechSeconds, m.toolRuns,
	)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// CallStarted counts a call in.
func (m *Metrics) CallStarted() { m.callsActive.Inc() }

// Call is what CallEnded records of an ended call.
type Call struct {
	EndReason                          string
	Duration                           time.Duration
	FramesIn, FramesOut, FramesDropped int
	InputTokens, OutputTokens          int
	SpeechTime                         time.Duration // for a model billed by duration
}

// CallEnded counts a call out. A scrape gathers the metrics one by one, so
// one that runs meanwhile may show part of the call's figures; the next
// shows all of them.
func (m *Metrics) CallEnded(c Call) {
	m.callDuration.Observe(c.Duration.Seconds())
	m.frames.WithLabelValues("caller_to_model").Add(float64(c.FramesIn))
	m.frames.WithLabelValues("model_to_caller").Add(float64(c.FramesOut))
	m.frames.WithLabelValues("dropped").Add(float64(c.FramesDropped))
	m.tokens.WithLabelValues("input").Add(float64(c.InputTokens))
	m.tokens.WithLabelValues("output").Add(float64(c.OutputTokens))
	m.speechSeconds.Add(c.SpeechTime.Seconds())
	m.callsActive.Dec()
	m.callsEnded.WithLabelValues(c.EndReason).Inc()
}

// StreamRefused counts a media stream closed before its call began.
func (m *Metrics) StreamRefused(reason string) { m.streamsRefused.WithLabelValues(reason).Inc() }

// BargeIn counts a barge-in.
func (m *Metrics) BargeIn() { m.bargeIns.Inc() }

// FirstAudio records a call's time to its first assistant audio.
func (m *Metrics) FirstAudio(d time.Duration) { m.firstAudio.Observe(d.Seconds()) }

// SpeechError counts an error the speech model of backend api ("realtime"
// or "live") reported.
func (m *Metrics) SpeechError(api, code string) { m.openaiErrors.WithLabelValues(api, code).Inc() }

// Message counts an incoming message by outcome.
func (m *Metrics) Message(outcome string) { m.messages.WithLabelValues(outcome).Inc() }

// AssistantReplied records how long the chat assistant took; a non-empty
// errCode also counts an OpenAI error of the chat API.
func (m *Metrics) AssistantReplied(d time.Duration, errCode string) {
	result := "ok"
	if errCode != "" {
		result = "error"
		m.openaiErrors.WithLabelValues("chat", errCode).Inc()
	}
	m.assistant.WithLabelValues(result).Observe(d.Seconds())
}

// Request records an HTTP request's duration by its route pattern (never
// the raw path, whose values are unbounded) and status code.
func (m *Metrics) Request(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

// ToolRan records a tool run: the tool's name (from the configuration and
// the built-in ones: bounded), its outcome and duration.
func (m *Metrics) ToolRan(name, outcome string, d time.Duration) {
	m.toolRuns.WithLabelValues(name, outcome).Observe(d.Seconds())
}
