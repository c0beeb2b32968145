package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"github.com/spf13/cast"
	"github.com/spf13/viper"
)

// LoadOptions tell Load where to look.
type LoadOptions struct {
	// ConfigFile is the YAML file given with --config; empty means none.
	// A file that is named but missing is an error.
	ConfigFile string
	// Getenv reads the environment (os.Getenv in production). An empty
	// value counts as unset. Nil means no environment.
	Getenv func(string) string
	// Dir is the working directory in which a .env file is looked for;
	// empty means ".". A missing .env is fine.
	Dir string
	// Purpose selects which settings are required; the zero value is
	// PurposeServe.
	Purpose Purpose
}

// Purpose is what the configuration is loaded for.
type Purpose uint8

const (
	// PurposeServe requires everything the gateway server needs.
	PurposeServe Purpose = iota
	// PurposeSend requires only what sending a message through the Twilio
	// REST API needs (gateway send).
	PurposeSend
)

// Load reads the configuration from, in rising priority, the built-in
// defaults, opts.ConfigFile (YAML), the .env file in opts.Dir and the
// environment, then validates it for opts.Purpose.
//
// The .env file is read into the configuration only, never into the process
// environment. On failure Load returns the configuration as far as it could
// be read and a *Problems error naming every problem at once; neither the
// error nor the returned Config's printed forms contain a secret.
func Load(opts LoadOptions) (Config, error) {
	var problems []problem
	fail := func(err error) { problems = append(problems, problem{text: err.Error()}) }
	v := viper.NewWithOptions()
	for _, s := range settings {
		v.SetDefault(key(s.name), s.def)
	}

	if opts.ConfigFile != "" {
		if err := mergeYAML(v, opts.ConfigFile); err != nil {
			fail(err)
		}
	}

	dir := opts.Dir
	if dir == "" {
		dir = "."
	}
	dotenv, err := godotenv.Read(filepath.Join(dir, ".env"))
	switch {
	case err == nil:
		if err := v.MergeConfigMap(known(dotenv)); err != nil {
			fail(fmt.Errorf(".env: %w", err))
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		fail(fmt.Errorf(".env: %w", err))
	}

	if opts.Getenv != nil {
		for _, s := range settings {
			if val := opts.Getenv(s.name); val != "" {
				v.Set(key(s.name), val)
			}
		}
	}

	cfg, parseProblems := parse(func(name string) (any, bool) {
		val := v.Get(key(name))
		return val, val != nil
	})
	if cfg.ToolsFile != "" && opts.Purpose == PurposeServe {
		var toolsProblems []problem
		cfg.Tools, toolsProblems = readToolsFile(cfg.ToolsFile, dir, lookupVar(opts.Getenv, dotenv))
		parseProblems = append(parseProblems, toolsProblems...)
	}
	problems = append(problems, parseProblems...)
	for _, p := range cfg.problems(opts.Purpose) {
		// A value that did not parse was left zero: say so once.
		if !slices.ContainsFunc(parseProblems, func(q problem) bool { return q.key == p.key }) {
			problems = append(problems, p)
		}
	}
	return cfg, newProblems(problems)
}

// lookupVar finds a variable of a ${VAR} reference in the tools file: in
// the environment, else in the .env file (an empty value counts as unset).
func lookupVar(getenv func(string) string, dotenv map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if getenv != nil {
			if v := getenv(name); v != "" {
				return v, true
			}
		}
		v := dotenv[name]
		return v, v != ""
	}
}

// key is the viper (and YAML) key of a setting.
func key(name string) string { return strings.ToLower(name) }

// mergeYAML merges the YAML file at path into v's configuration layer and
// reports unknown keys, which are most likely typos.
func mergeYAML(v *viper.Viper, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	fv := viper.NewWithOptions()
	fv.SetConfigType("yaml")
	if err := fv.ReadConfig(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	var unknown []string
	for _, k := range fv.AllKeys() {
		if !slices.ContainsFunc(settings, func(s setting) bool { return key(s.name) == k }) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("config file %s: unknown settings: %s", path, strings.Join(unknown, ", "))
	}
	return v.MergeConfigMap(fv.AllSettings())
}

// known keeps the entries of a .env file that are settings (a .env file may
// hold other tools' variables too), keyed for viper.
func known(env map[string]string) map[string]any {
	m := make(map[string]any, len(env))
	for _, s := range settings {
		if val, ok := env[s.name]; ok && val != "" {
			m[key(s.name)] = val
		}
	}
	return m
}

// parse builds a Config from raw values (strings, or YAML scalars and
// lists) and returns the problems of values that do not parse. get returns
// a setting's raw value by its environment name.
func parse(get func(name string) (any, bool)) (Config, []problem) {
	p := parser{get: get}
	cfg := Config{
		Port:                     p.integer(keyPort),
		PublicURL:                strings.TrimSuffix(p.str(keyPublicURL), "/"),
		MetricsAddr:              p.str(keyMetricsAddr),
		OpenAIAPIKey:             Secret(p.str(keyOpenAIAPIKey)),
		OpenAIBaseURL:            strings.TrimSuffix(p.str(keyOpenAIBaseURL), "/"),
		OpenAIRealtimeURL:        p.str(keyOpenAIRealtimeURL),
		OpenAIRealtimeModel:      p.str(keyOpenAIRealtimeModel),
		SpeechBackend:            strings.ToLower(p.str(keySpeechBackend)),
		OpenAILiveModel:          p.str(keyOpenAILiveModel),
		OpenAILiveURL:            p.str(keyOpenAILiveURL),
		OpenAIModel:              p.str(keyOpenAIModel),
		OpenAITranscriptionModel: p.str(keyOpenAITranscriptionModel),
		OpenAIAssistantID:        p.str(keyOpenAIAssistantID),
		AssistantBackend:         strings.ToLower(p.str(keyAssistantBackend)),
		SystemMessage:            p.str(keySystemMessage),
		Voice:                    p.str(keyVoice),
		Temperature:              p.float(keyTemperature),
		AISpeaksFirst:            p.boolean(keyAISpeaksFirst),
		Greeting:                 p.str(keyGreeting),
		TurnDetection:            strings.ToLower(p.str(keyTurnDetection)),
		TwilioAccountSID:         p.str(keyTwilioAccountSID),
		TwilioAuthToken:          Secret(p.str(keyTwilioAuthToken)),
		TwilioAPIBaseURL:         strings.TrimSuffix(p.str(keyTwilioAPIBaseURL), "/"),
		TwilioFrom:               p.str(keyTwilioFrom),
		AllowedNumbers:           p.list(keyAllowedNumbers),
		WSTokenTTL:               p.duration(keyWSTokenTTL),
		Prewarm:                  p.boolean(keyPrewarm),
		ReplyInlineTimeout:       p.duration(keyReplyInlineTimeout),
		ShutdownDrain:            p.duration(keyShutdownDrain),
		DatabaseURL:              p.str(keyDatabaseURL),
		DatabaseSchema:           p.str(keyDatabaseSchema),
		RedisURL:                 p.str(keyRedisURL),
		RedisKeyPrefix:           p.str(keyRedisKeyPrefix),
		LogLevel:                 strings.ToLower(p.str(keyLogLevel)),
		Debug:                    p.boolean(keyDebug),
		StreamSignatureRequired:  p.boolean(keyStreamSignatureRequired),
		TwilioWebhookSharedKey:   Secret(p.str(keyTwilioWebhookSharedKey)),
		OpenAIOpenTimeout:        p.duration(keyOpenAIOpenTimeout),
		StreamIdleTimeout:        p.duration(keyStreamIdleTimeout),
		LogDigits:                p.boolean(keyLogDigits),
		ToolsFile:                p.str(keyToolsFile),
		ToolsSigningSecret:       Secret(p.str(keyToolsSigningSecret)),
		ToolHoldAfter:            p.duration(keyToolHoldAfter),
		ToolMaxCallsPerTurn:      p.integer(keyToolMaxCallsPerTurn),
		TransferNumber:           p.str(keyTransferNumber),
	}
	if cfg.OpenAIRealtimeURL == "" {
		cfg.OpenAIRealtimeURL = RealtimeURL(cfg.OpenAIBaseURL, cfg.OpenAIRealtimeModel)
	}
	if cfg.OpenAILiveURL == "" {
		cfg.OpenAILiveURL = LiveURL(cfg.OpenAIBaseURL)
	}
	if cfg.Debug {
		cfg.LogLevel = "debug"
	}
	return cfg, p.problems
}

// RealtimeURL derives the Realtime WebSocket URL from the REST base URL:
// https becomes wss (http becomes ws), then "/realtime?model=MODEL".
func RealtimeURL(baseURL, model string) string {
	return wsBase(baseURL) + "/realtime?model=" + url.QueryEscape(model)
}

// LiveURL derives the GPT-Live WebSocket URL from the REST base URL as
// RealtimeURL does, with "/live/sessions" and no query (the model goes in
// session.start).
func LiveURL(baseURL string) string { return wsBase(baseURL) + "/live/sessions" }

// wsBase is the REST base URL with https made wss (http made ws).
func wsBase(baseURL string) string {
	u := strings.TrimSuffix(baseURL, "/")
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u
}

// parser turns raw values into typed ones, collecting a problem for each
// value that does not parse. Problems quote a value only when its setting
// is not secret.
type parser struct {
	get      func(name string) (any, bool)
	problems []problem
}

func (p *parser) raw(name string) string {
	val, ok := p.get(name)
	if !ok {
		return ""
	}
	if list, ok := val.([]any); ok { // a YAML list
		parts := make([]string, 0, len(list))
		for _, x := range list {
			parts = append(parts, cast.ToString(x))
		}
		return strings.Join(parts, ",")
	}
	s, err := cast.ToStringE(val)
	if err != nil {
		p.bad(name, "", "must be a single value")
	}
	return strings.TrimSpace(s)
}

// bad records that name's value val is not what it should be (want); only
// the first problem of a setting is kept.
func (p *parser) bad(name, val, want string) {
	if slices.ContainsFunc(p.problems, func(q problem) bool { return q.key == name }) {
		return
	}
	text := fmt.Sprintf("%s %s", name, want)
	if val != "" && !isSecret(name) {
		text += fmt.Sprintf(" (got %q)", val)
	}
	p.problems = append(p.problems, problem{key: name, text: text})
}

func (p *parser) str(name string) string { return p.raw(name) }

func (p *parser) integer(name string) int {
	s := p.raw(name)
	n, err := strconv.Atoi(s)
	if err != nil {
		p.bad(name, s, "must be a whole number")
	}
	return n
}

func (p *parser) float(name string) float64 {
	s := p.raw(name)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		p.bad(name, s, "must be a number")
	}
	return f
}

func (p *parser) boolean(name string) bool {
	s := p.raw(name)
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.bad(name, s, "must be true or false")
	}
	return b
}

func (p *parser) duration(name string) time.Duration {
	s := p.raw(name)
	d, err := time.ParseDuration(s)
	if err != nil {
		p.bad(name, s, `must be a duration with a unit, such as "10s" or "1m"`)
	}
	return d
}

func (p *parser) list(name string) []string {
	var out []string
	for part := range strings.SplitSeq(p.raw(name), ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func isSecret(name string) bool {
	i := slices.IndexFunc(settings, func(s setting) bool { return s.name == name })
	return i >= 0 && settings[i].secret
}
