package configs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// env is a fake environment for LoadOptions.Getenv.
type env map[string]string

func (e env) get(name string) string { return e[name] }

// required are the settings without which the server does not start.
var required = env{"OPENAI_API_KEY": "sk-test-key", "TWILIO_AUTH_TOKEN": "twilio-test-token"}

func (e env) with(kv ...string) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestLoadPriority(t *testing.T) {
	tests := []struct {
		name      string
		yaml      string // config file content; "" means no --config
		dotenv    string // .env content; "" means no .env
		env       env
		wantVoice string
		wantPort  int
	}{
		{name: "defaults", wantVoice: "alloy", wantPort: 5050},
		{name: "yaml over defaults", yaml: "voice: ash\nport: 6000\n", wantVoice: "ash", wantPort: 6000},
		{name: "dotenv over yaml", yaml: "voice: ash\nport: 6000\n", dotenv: "VOICE=coral\n", wantVoice: "coral", wantPort: 6000},
		{name: "env over dotenv", yaml: "voice: ash\n", dotenv: "VOICE=coral\nPORT=7000\n", env: env{"VOICE": "verse"}, wantVoice: "verse", wantPort: 7000},
		{name: "empty env counts as unset", dotenv: "VOICE=coral\n", env: env{"VOICE": ""}, wantVoice: "coral", wantPort: 5050},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := LoadOptions{Dir: dir}
			if tt.yaml != "" {
				opts.ConfigFile = write(t, t.TempDir(), "gateway.yaml", tt.yaml)
			}
			if tt.dotenv != "" {
				write(t, dir, ".env", tt.dotenv)
			}
			e := required.with()
			for k, v := range tt.env {
				e[k] = v
			}
			opts.Getenv = e.get

			cfg, err := Load(opts)
			require.NoError(t, err)
			assert.Equal(t, tt.wantVoice, cfg.Voice)
			assert.Equal(t, tt.wantPort, cfg.Port)
		})
	}
}

func TestLoadReadsEverySettingFromEachSource(t *testing.T) {
	toolsFile := write(t, t.TempDir(), "tools.yaml", "tools:\n  - {name: ping, description: Ping., url: \"http://127.0.0.1:9/ping\"}\n")
	values := map[string]string{
		"PORT": "8080", "PUBLIC_URL": "https://gw.example.com/", "METRICS_ADDR": "127.0.0.1:9090", "OPENAI_API_KEY": "sk-1",
		"OPENAI_BASE_URL": "http://127.0.0.1:9/v1/", "OPENAI_REALTIME_MODEL": "rt-model",
		"SPEECH_BACKEND": "Live", "OPENAI_LIVE_MODEL": "live-model", "OPENAI_LIVE_URL": "ws://127.0.0.1:6/live/sessions",
		"OPENAI_MODEL": "text-model", "OPENAI_TRANSCRIPTION_MODEL": "stt-model",
		"OPENAI_ASSISTANT_ID": "asst_1", "ASSISTANT_BACKEND": "assistants",
		"SYSTEM_MESSAGE": "be terse", "VOICE": "ash", "TEMPERATURE": "1.5",
		"AI_SPEAKS_FIRST": "true", "GREETING": "say hi", "TURN_DETECTION": "semantic_vad",
		"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "tok", "TWILIO_API_BASE_URL": "http://127.0.0.1:8/",
		"TWILIO_FROM": "whatsapp:+14155238886", "ALLOWED_NUMBERS": "+15551234567, +447700900123",
		"WS_TOKEN_TTL": "30s", "PREWARM": "false", "REPLY_INLINE_TIMEOUT": "5s", "SHUTDOWN_DRAIN": "1m",
		"DATABASE_URL": "postgres://u@127.0.0.1/db", "REDIS_URL": "redis://127.0.0.1:6379/0",
		"DATABASE_SCHEMA": "gw_prod", "REDIS_KEY_PREFIX": "gw-prod:",
		"LOG_LEVEL": "warn", "DEBUG": "false", "OPENAI_REALTIME_URL": "ws://127.0.0.1:7/realtime?model=x",
		"STREAM_SIGNATURE_REQUIRED": "false", "TWILIO_WEBHOOK_SHARED_KEY": "whk-secret",
		"OPENAI_OPEN_TIMEOUT": "4s", "STREAM_IDLE_TIMEOUT": "7s", "LOG_DIGITS": "true",
		"TOOLS_FILE": toolsFile, "TOOLS_SIGNING_SECRET": "tools-signing-secret", "TOOL_HOLD_AFTER": "2s",
		"TOOL_MAX_CALLS_PER_TURN": "5", "TRANSFER_NUMBER": "sip:desk@pbx.example.com",
	}
	require.Len(t, values, len(settings), "the test must cover every setting")
	want := Config{
		Port: 8080, PublicURL: "https://gw.example.com", MetricsAddr: "127.0.0.1:9090", OpenAIAPIKey: "sk-1",
		OpenAIBaseURL: "http://127.0.0.1:9/v1", OpenAIRealtimeURL: "ws://127.0.0.1:7/realtime?model=x",
		OpenAIRealtimeModel: "rt-model", SpeechBackend: SpeechLive, OpenAILiveModel: "live-model",
		OpenAILiveURL: "ws://127.0.0.1:6/live/sessions", OpenAIModel: "text-model", OpenAITranscriptionModel: "stt-model",
		OpenAIAssistantID: "asst_1", AssistantBackend: BackendAssistants, SystemMessage: "be terse",
		Voice: "ash", Temperature: 1.5, AISpeaksFirst: true, Greeting: "say hi", TurnDetection: TurnSemanticVAD,
		TwilioAccountSID: "AC123", TwilioAuthToken: "tok", TwilioAPIBaseURL: "http://127.0.0.1:8",
		TwilioFrom: "whatsapp:+14155238886", AllowedNumbers: []string{"+15551234567", "+447700900123"},
		WSTokenTTL: 30 * time.Second, ReplyInlineTimeout: 5 * time.Second, ShutdownDrain: time.Minute,
		DatabaseURL: "postgres://u@127.0.0.1/db", RedisURL: "redis://127.0.0.1:6379/0", LogLevel: "warn",
		DatabaseSchema: "gw_prod", RedisKeyPrefix: "gw-prod:",
		TwilioWebhookSharedKey: "whk-secret",
		OpenAIOpenTimeout:      4 * time.Second, StreamIdleTimeout: 7 * time.Second, LogDigits: true,
		ToolsFile: toolsFile, ToolsSigningSecret: "tools-signing-secret", ToolHoldAfter: 2 * time.Second,
		ToolMaxCallsPerTurn: 5, TransferNumber: "sip:desk@pbx.example.com",
		Tools: ToolsFile{Tools: []HTTPTool{{Name: "ping", Description: "Ping.", URL: "http://127.0.0.1:9/ping",
			Timeout: DefaultHTTPToolTimeout, Channels: AllChannels}}},
	}

	var yaml, dotenv strings.Builder
	for k, v := range values {
		fmt.Fprintf(&yaml, "%s: %q\n", strings.ToLower(k), v)
		fmt.Fprintf(&dotenv, "%s=%q\n", k, v)
	}
	sources := map[string]func(t *testing.T) LoadOptions{
		"yaml": func(t *testing.T) LoadOptions {
			return LoadOptions{Dir: t.TempDir(), ConfigFile: write(t, t.TempDir(), "c.yaml", yaml.String())}
		},
		"dotenv": func(t *testing.T) LoadOptions {
			dir := t.TempDir()
			write(t, dir, ".env", dotenv.String())
			return LoadOptions{Dir: dir}
		},
		"env": func(t *testing.T) LoadOptions {
			return LoadOptions{Dir: t.TempDir(), Getenv: func(k string) string { return values[k] }}
		},
	}
	for name, opts := range sources {
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(opts(t))
			require.NoError(t, err)
			assert.Equal(t, want, cfg)
		})
	}
}

func TestLoadDotenvStaysOutOfProcessEnv(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, ".env", "GREETING=from-dotenv-only\n")
	cfg, err := Load(LoadOptions{Dir: dir, Getenv: required.get})
	require.NoError(t, err)
	assert.Equal(t, "from-dotenv-only", cfg.Greeting)
	_, set := os.LookupEnv("GREETING")
	assert.False(t, set, ".env must not be copied into the process environment")
}

func TestLoadYAMLListAndUnknownKey(t *testing.T) {
	path := write(t, t.TempDir(), "c.yaml", "allowed_numbers:\n  - \"+15551234567\"\n  - \"+15557654321\"\n")
	cfg, err := Load(LoadOptions{Dir: t.TempDir(), ConfigFile: path, Getenv: required.get})
	require.NoError(t, err)
	assert.Equal(t, []string{"+15551234567", "+15557654321"}, cfg.AllowedNumbers)

	path = write(t, t.TempDir(), "c.yaml", "prot: 1\n")
	_, err = Load(LoadOptions{Dir: t.TempDir(), ConfigFile: path, Getenv: required.get})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown settings: prot")
}

func TestLoadYAMLMapIsOneProblem(t *testing.T) {
	path := write(t, t.TempDir(), "c.yaml", "port: {a: 1}\n")
	_, err := Load(LoadOptions{Dir: t.TempDir(), ConfigFile: path, Getenv: required.get})
	require.Error(t, err)
	var p *Problems
	require.True(t, errors.As(err, &p))
	assert.Len(t, p.List, 1, err.Error())
}

func TestLoadMissingConfigFile(t *testing.T) {
	_, err := Load(LoadOptions{Dir: t.TempDir(), ConfigFile: filepath.Join(t.TempDir(), "nope.yaml"), Getenv: required.get})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope.yaml")
}

func TestLoadNamesEveryProblemAtOnce(t *testing.T) {
	_, err := Load(LoadOptions{Dir: t.TempDir(), Getenv: env{"PORT": "http", "WS_TOKEN_TTL": "60"}.get})
	require.Error(t, err)
	var p *Problems
	require.True(t, errors.As(err, &p))
	msg := err.Error()
	for _, want := range []string{"OPENAI_API_KEY is required", "TWILIO_AUTH_TOKEN is required", `PORT must be a whole number (got "http")`, "WS_TOKEN_TTL must be a duration"} {
		assert.Contains(t, msg, want)
	}
	assert.Len(t, p.List, 4, msg)
}

func TestValidate(t *testing.T) {
	base := Defaults()
	base.OpenAIAPIKey, base.TwilioAuthToken = "sk", "tok"
	require.NoError(t, base.Validate())

	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of problems; one entry per problem
	}{
		{"two required missing", func(c *Config) { c.OpenAIAPIKey, c.TwilioAuthToken = "", "" },
			[]string{"OPENAI_API_KEY is required", "TWILIO_AUTH_TOKEN is required"}},
		{"public url http", func(c *Config) { c.PublicURL = "http://gw.example.com" }, []string{"PUBLIC_URL must use https"}},
		{"public url relative", func(c *Config) { c.PublicURL = "gw.example.com" }, []string{"PUBLIC_URL must be an absolute URL"}},
		{"public url query", func(c *Config) { c.PublicURL = "https://gw.example.com/?a=1" }, []string{"PUBLIC_URL must not have a query"}},
		{"assistants needs id", func(c *Config) { c.AssistantBackend = BackendAssistants }, []string{"OPENAI_ASSISTANT_ID is required"}},
		{"unknown backend", func(c *Config) { c.AssistantBackend = "chat" }, []string{"ASSISTANT_BACKEND must be"}},
		{"temperature", func(c *Config) { c.Temperature = 2.5 }, []string{"TEMPERATURE must be between 0 and 2"}},
		{"turn detection", func(c *Config) { c.TurnDetection = "vad" }, []string{"TURN_DETECTION must be"}},
		{"allowed numbers", func(c *Config) { c.AllowedNumbers = []string{"+15551234567", "5551234", "+0123"} },
			[]string{`"5551234" is not an E.164`, `"+0123" is not an E.164`}},
		{"inline timeout at twilio limit", func(c *Config) { c.ReplyInlineTimeout = 15 * time.Second }, []string{"REPLY_INLINE_TIMEOUT must be positive and below"}},
		{"token ttl", func(c *Config) { c.WSTokenTTL = 0 }, []string{"WS_TOKEN_TTL must be positive"}},
		{"drain", func(c *Config) { c.ShutdownDrain = -time.Second }, []string{"SHUTDOWN_DRAIN must be positive"}},
		{"open timeout", func(c *Config) { c.OpenAIOpenTimeout = 0 }, []string{"OPENAI_OPEN_TIMEOUT must be positive"}},
		{"stream idle", func(c *Config) { c.StreamIdleTimeout = -time.Second }, []string{"STREAM_IDLE_TIMEOUT must be positive"}},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, []string{"LOG_LEVEL must be"}},
		{"port", func(c *Config) { c.Port = 70000 }, []string{"PORT must be between"}},
		{"metrics addr without port", func(c *Config) { c.MetricsAddr = "127.0.0.1" }, []string{"METRICS_ADDR must be host:port"}},
		{"metrics addr bad port", func(c *Config) { c.MetricsAddr = ":http" }, []string{"METRICS_ADDR must end with a port"}},
		{"metrics addr on the public port", func(c *Config) { c.MetricsAddr = "127.0.0.1:5050" }, []string{"METRICS_ADDR must not use PORT's port 5050"}},
		{"realtime url", func(c *Config) { c.OpenAIRealtimeURL = "https://x/realtime" }, []string{"OPENAI_REALTIME_URL must be a ws(s) URL"}},
		{"base urls", func(c *Config) { c.OpenAIBaseURL, c.TwilioAPIBaseURL = "api.openai.com", "" },
			[]string{"OPENAI_BASE_URL must be an http(s) URL", "TWILIO_API_BASE_URL must be an http(s) URL"}},
		{"sender", func(c *Config) { c.TwilioFrom = "whatsapp:14155238886" }, []string{"TWILIO_FROM must be"}},
		{"account sid", func(c *Config) { c.TwilioAccountSID = "SK123" }, []string{"TWILIO_ACCOUNT_SID must start with AC"}},
		{"greeting", func(c *Config) { c.AISpeaksFirst, c.Greeting = true, "" }, []string{"GREETING must not be empty"}},
		{"redis scheme", func(c *Config) { c.RedisURL = "http://127.0.0.1:6379" }, []string{"REDIS_URL must be a redis://"}},
		{"database url empty", func(c *Config) { c.DatabaseURL = "" }, []string{"DATABASE_URL must not be empty"}},
		{"postgres url syntax", func(c *Config) { c.DatabaseURL = "postgres://gw:pw@[::1/gw" }, []string{"DATABASE_URL must be a postgres://"}},
		{"database url with a misspelt scheme", func(c *Config) { c.DatabaseURL = "postgress://gw:Secret@db:5432/gw" },
			[]string{`DATABASE_URL has the unknown scheme "postgress"`}},
		{"database url of another database", func(c *Config) { c.DatabaseURL = "mysql://gw:Secret@db/gw" },
			[]string{`DATABASE_URL has the unknown scheme "mysql"`}},
		{"database url of no kind", func(c *Config) { c.DatabaseURL = "garbage" },
			[]string{"DATABASE_URL must be a postgres:// URL or a SQLite file path ending in .db, .sqlite or .sqlite3"}},
		{"database url with credentials and no scheme", func(c *Config) { c.DatabaseURL = "gw:Secret@db:5432/gw.db" },
			[]string{"DATABASE_URL looks like a URL with credentials but has no postgres:// scheme"}},
		{"schema with sqlite", func(c *Config) { c.DatabaseSchema = "gateway" }, []string{"DATABASE_SCHEMA applies only to PostgreSQL"}},
		{"schema identifier", func(c *Config) { c.DatabaseURL, c.DatabaseSchema = "postgres://db/gw", `Gateway"; DROP` }, []string{"DATABASE_SCHEMA must be a lower-case SQL identifier"}},
		{"hold", func(c *Config) { c.ToolHoldAfter = -time.Second }, []string{"TOOL_HOLD_AFTER must be positive, or 0"}},
		{"max calls", func(c *Config) { c.ToolMaxCallsPerTurn = 0 }, []string{"TOOL_MAX_CALLS_PER_TURN must be at least 1"}},
		{"transfer number", func(c *Config) { c.TransferNumber, c.TwilioAccountSID = "5551234", "AC1" },
			[]string{`TRANSFER_NUMBER must be an E.164 number such as +15551234567 or a SIP address such as sip:desk@example.com (got "5551234")`}},
		{"sip without user", func(c *Config) { c.TransferNumber, c.TwilioAccountSID = "sip:example.com", "AC1" }, []string{"TRANSFER_NUMBER must be"}},
		{"transfer without account", func(c *Config) { c.TransferNumber = "+15551234567" }, []string{"TRANSFER_NUMBER needs TWILIO_ACCOUNT_SID"}},
		{"mcp on gpt-live", func(c *Config) {
			c.Tools.MCP, c.SpeechBackend = []MCPServer{{Label: "cal", URL: "https://mcp.example.com/mcp", RequireApproval: "never"}}, SpeechLive
		}, []string{"TOOLS_FILE has MCP servers, which SPEECH_BACKEND=live cannot use"}},
		{"mcp on assistants", func(c *Config) {
			c.Tools.MCP, c.AssistantBackend, c.OpenAIAssistantID = []MCPServer{{Label: "cal", URL: "https://mcp.example.com/mcp", RequireApproval: "never"}}, BackendAssistants, "asst_1"
		}, []string{"TOOLS_FILE has MCP servers, which ASSISTANT_BACKEND=assistants cannot use"}},
		{"short secret", func(c *Config) { c.Tools.Tools, c.ToolsSigningSecret = []HTTPTool{validTool}, "short" },
			[]string{"TOOLS_SIGNING_SECRET must be at least 16 characters"}},
		{"tool timeout", func(c *Config) {
			tt := validTool
			tt.Timeout = 2 * time.Minute
			c.Tools.Tools, c.ToolsSigningSecret = []HTTPTool{tt}, "0123456789abcdef"
		}, []string{"tools[0] (t).timeout must be positive and at most 1m0s (got 2m0s)"}},
		{"mcp", func(c *Config) {
			c.Tools.MCP = []MCPServer{
				{Label: "a", URL: "https://u:p@m.example.com", RequireApproval: ApprovalNever, AllowedTools: []string{"ok", "not ok"}},
				{Label: "a", URL: "https://m.example.com", RequireApproval: ApprovalAlways,
					Headers: map[string]Secret{"Bad Name": "v", "X-Split": "a\r\nSecret: 1"}},
			}
		}, []string{
			"mcp[0] (a).url must not hold a user or password",
			`mcp[0] (a).allowed_tools has "not ok", which is not a tool name`,
			"mcp[1] (a).label repeats the name of mcp[0] (a)",
			`mcp[1] (a).headers has "Bad Name", which is not a header name`,
			"mcp[1] (a).headers.X-Split must be on one line",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			err := c.Validate()
			assertProblems(t, err, tt.want)
			assert.NotContains(t, err.Error(), "Secret", "a credential in a setting is never quoted")
		})
	}

	ok := []func(*Config){
		func(c *Config) { c.PublicURL = "http://127.0.0.1:5050" },
		func(c *Config) { c.PublicURL = "http://localhost:5050" },
		func(c *Config) { c.AssistantBackend, c.OpenAIAssistantID = BackendAssistants, "asst_1" },
		func(c *Config) { c.Port = 0 },
		func(c *Config) { c.TwilioFrom = "MG0123" },
		func(c *Config) { c.TwilioFrom = "+14155238886" },
		func(c *Config) { c.DatabaseURL, c.DatabaseSchema = "postgres://gw@db.internal:5432/gw", "gateway_prod" },
		func(c *Config) { c.DatabaseURL = "postgres:///gw?host=/var/run/postgresql" }, // a Unix socket
		func(c *Config) { c.RedisKeyPrefix = "" },
		func(c *Config) { c.DatabaseURL = "/var/lib/gateway/gateway.sqlite3" },
		func(c *Config) { c.DatabaseURL = "gateway.sqlite" },
		func(c *Config) { c.DatabaseURL = "data/gateway.DB" },
		func(c *Config) { c.ToolHoldAfter = 0 },
		func(c *Config) { c.TransferNumber, c.TwilioAccountSID = "+15551234567", "AC1" },
		func(c *Config) {
			c.TransferNumber, c.TwilioAccountSID = "sip:desk@pbx.example.com:5061;transport=tls", "AC1"
		},
		func(c *Config) { c.ToolsSigningSecret = "short" }, // no HTTP tools: unused
		func(c *Config) { c.Tools.Tools, c.ToolsSigningSecret = []HTTPTool{validTool}, "0123456789abcdef" },
	}
	for i, change := range ok {
		c := base
		change(&c)
		assert.NoError(t, c.Validate(), "case %d", i)
	}
}

// assertProblems checks that err is a *Problems with one problem per
// entry of want, each containing its entry.
func assertProblems(t *testing.T, err error, want []string) {
	t.Helper()
	require.Error(t, err)
	var p *Problems
	require.True(t, errors.As(err, &p))
	assert.Len(t, p.List, len(want), err.Error())
	for _, w := range want {
		assert.Contains(t, err.Error(), w)
	}
}

func TestLoadForSendNeedsOnlyTwilio(t *testing.T) {
	_, err := Load(LoadOptions{Dir: t.TempDir(), Purpose: PurposeSend, Getenv: env{"TWILIO_AUTH_TOKEN": "tok"}.get})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TWILIO_ACCOUNT_SID is required")
	assert.NotContains(t, err.Error(), "OPENAI_API_KEY")

	_, err = Load(LoadOptions{Dir: t.TempDir(), Purpose: PurposeSend, Getenv: env{"TWILIO_AUTH_TOKEN": "tok", "TWILIO_ACCOUNT_SID": "AC1"}.get})
	require.NoError(t, err)
}

func TestRealtimeURL(t *testing.T) {
	tests := []struct{ base, model, want string }{
		{"https://api.openai.com/v1", "gpt-realtime-2.1", "wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1"},
		{"https://api.openai.com/v1/", "m", "wss://api.openai.com/v1/realtime?model=m"},
		{"http://127.0.0.1:8080/v1", "m", "ws://127.0.0.1:8080/v1/realtime?model=m"},
		{"https://proxy.example.com/openai/v1", "a b&c", "wss://proxy.example.com/openai/v1/realtime?model=a+b%26c"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, RealtimeURL(tt.base, tt.model))
	}

	cfg, err := Load(LoadOptions{Dir: t.TempDir(), Getenv: required.with("OPENAI_BASE_URL", "http://127.0.0.1:1/v1", "OPENAI_REALTIME_MODEL", "rt").get})
	require.NoError(t, err)
	assert.Equal(t, "ws://127.0.0.1:1/v1/realtime?model=rt", cfg.OpenAIRealtimeURL)

	cfg, err = Load(LoadOptions{Dir: t.TempDir(), Getenv: required.with("OPENAI_REALTIME_URL", "wss://rt.example.com/x?model=y").get})
	require.NoError(t, err)
	assert.Equal(t, "wss://rt.example.com/x?model=y", cfg.OpenAIRealtimeURL, "an explicit URL wins")
}

func TestDebugForcesDebugLevel(t *testing.T) {
	cfg, err := Load(LoadOptions{Dir: t.TempDir(), Getenv: required.with("DEBUG", "True", "LOG_LEVEL", "error").get})
	require.NoError(t, err)
	assert.Equal(t, slog.LevelDebug, cfg.SlogLevel())
	assert.True(t, cfg.Postgres() == false)
}

func TestSecretsNeverPrinted(t *testing.T) {
	const (
		apiKey    = "sk-SECRET-api-key"
		authToken = "SECRET-auth-token"
		dbPass    = "SECRETdbpass"
		redisPass = "SECRETredispass"
		sharedKey = "SECRET-webhook-shared-key"
	)
	e := env{
		"OPENAI_API_KEY": apiKey, "TWILIO_AUTH_TOKEN": authToken, "TWILIO_WEBHOOK_SHARED_KEY": sharedKey,
		"DATABASE_URL": "postgres://app:" + dbPass + "@db.internal/gw",
		"REDIS_URL":    "redis://:" + redisPass + "@cache.internal:6379/0",
	}
	secrets := []string{apiKey, authToken, dbPass, redisPass, sharedKey}

	cfg, err := Load(LoadOptions{Dir: t.TempDir(), Getenv: e.get})
	require.NoError(t, err)
	assert.Equal(t, apiKey, string(cfg.OpenAIAPIKey), "the value is still usable")
	assert.True(t, cfg.Postgres())

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "config", cfg, "key", cfg.OpenAIAPIKey)
	printed := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.TwilioAuthToken)
	for _, s := range secrets {
		assert.NotContains(t, logged.String(), s)
		assert.NotContains(t, printed, s)
	}
	assert.Contains(t, logged.String(), "db.internal", "non-secret parts stay visible")

	// Invalid values of secret settings are not quoted in errors.
	bad := e.with("REDIS_URL", "http://:"+redisPass+"@cache", "DATABASE_URL", "postgres://app:"+dbPass+"@[db/gw", "PORT", "x")
	_, err = Load(LoadOptions{Dir: t.TempDir(), Getenv: bad.get})
	require.Error(t, err)
	for _, s := range secrets {
		assert.NotContains(t, err.Error(), s)
	}
	assert.Contains(t, err.Error(), "REDIS_URL must be")
	assert.Contains(t, err.Error(), "DATABASE_URL must be a postgres://")
}

// TestExamplesListEverySetting keeps configs/.env.example and
// configs/gateway.example.yaml complete: each names every setting once,
// with a comment line above it.
func TestExamplesListEverySetting(t *testing.T) {
	for file, sep := range map[string]string{".env.example": "=", "gateway.example.yaml": ":"} {
		t.Run(file, func(t *testing.T) {
			f, err := os.Open(file)
			require.NoError(t, err)
			defer f.Close()
			seen := map[string]int{}
			prevComment := false
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				// A setting may be commented out ("# KEY=value") to show an
				// optional one; its explanation is the comment above.
				entry := strings.TrimPrefix(line, "# ")
				name, _, found := strings.Cut(entry, sep)
				name = strings.ToUpper(strings.TrimSpace(name))
				if found && isSetting(name) {
					assert.True(t, prevComment, "%s has no explanation above it", name)
					seen[name]++
					prevComment = false
					continue
				}
				prevComment = strings.HasPrefix(line, "#")
			}
			require.NoError(t, sc.Err())
			for _, s := range settings {
				assert.Equal(t, 1, seen[s.name], "%s must appear once", s.name)
			}
		})
	}
}

func isSetting(name string) bool {
	for _, s := range settings {
		if s.name == name {
			return true
		}
	}
	return false
}

func TestValidateAcceptsMetricsAddresses(t *testing.T) {
	for _, addr := range []string{"", ":9090", "127.0.0.1:9090", "[::1]:9090", "localhost:0"} {
		c := Defaults()
		c.OpenAIAPIKey, c.TwilioAuthToken = "sk", "tok"
		c.MetricsAddr = addr
		assert.NoError(t, c.Validate(), addr)
	}
}

func TestLiveURLIsDerived(t *testing.T) {
	assert.Equal(t, "wss://api.openai.com/v1/live/sessions", LiveURL("https://api.openai.com/v1/"))
	assert.Equal(t, "ws://127.0.0.1:9/v1/live/sessions", LiveURL("http://127.0.0.1:9/v1"))
	cfg, err := Load(LoadOptions{Dir: t.TempDir(), Getenv: required.with().get})
	require.NoError(t, err)
	assert.Equal(t, SpeechRealtime, cfg.SpeechBackend, "Realtime by default")
	assert.Equal(t, "wss://api.openai.com/v1/live/sessions", cfg.OpenAILiveURL)
	assert.Equal(t, DefaultLiveModel, cfg.OpenAILiveModel)
}

func TestVoiceIsCheckedPerSpeechBackend(t *testing.T) {
	tests := []struct {
		backend, voice string
		ok             bool
	}{
		{SpeechRealtime, "marin", true},
		{SpeechRealtime, "willow", false}, // a GPT-Live voice only
		{SpeechLive, "willow", true},
		{SpeechLive, "alloy", true},
		{SpeechLive, "voice_1234", true}, // a custom voice
		{SpeechRealtime, "Alloy", false},
		{SpeechLive, "", false},
	}
	for _, tt := range tests {
		cfg := Defaults()
		cfg.OpenAIAPIKey, cfg.TwilioAuthToken = "sk", "tok"
		cfg.SpeechBackend, cfg.Voice = tt.backend, tt.voice
		err := cfg.Validate()
		if tt.ok {
			assert.NoError(t, err, "%s/%s", tt.backend, tt.voice)
			continue
		}
		require.Error(t, err, "%s/%s", tt.backend, tt.voice)
		assert.Contains(t, err.Error(), "VOICE", "the error names the setting")
		assert.Contains(t, err.Error(), "SPEECH_BACKEND="+tt.backend)
	}
	cfg := Defaults()
	cfg.OpenAIAPIKey, cfg.TwilioAuthToken, cfg.SpeechBackend = "sk", "tok", "gemini"
	require.ErrorContains(t, cfg.Validate(), "SPEECH_BACKEND must be realtime or live")
}
