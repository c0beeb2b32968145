package configs

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Problems is the error of Load and Validate: every problem found, each a
// sentence naming its setting. It never contains a secret value.
type Problems struct {
	List []string
}

// Error lists every problem, one a line.
func (p *Problems) Error() string {
	return "invalid configuration:\n  - " + strings.Join(p.List, "\n  - ")
}

// Validate checks that c can run the gateway server. It returns nil or a
// *Problems naming every problem at once; no secret value appears in it.
func (c Config) Validate() error {
	return newProblems(c.problems(PurposeServe))
}

// problem is one thing wrong with the setting key.
type problem struct {
	key, text string
}

// newProblems returns nil for no problems, else a *Problems.
func newProblems(list []problem) error {
	if len(list) == 0 {
		return nil
	}
	p := &Problems{List: make([]string, len(list))}
	for i, x := range list {
		p.List[i] = x.text
	}
	return p
}

// e164 is an E.164 number: "+", a non-zero digit, at most 15 digits in all.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// sqlIdentifier is what DATABASE_SCHEMA may be: a lower-case SQL
// identifier that needs no quoting.
var sqlIdentifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// problems lists what is wrong with c for purpose.
func (c Config) problems(purpose Purpose) []problem {
	var list []problem
	add := func(format string, key string, args ...any) {
		list = append(list, problem{key: key, text: fmt.Sprintf(format, append([]any{key}, args...)...)})
	}

	if c.TwilioAuthToken == "" {
		add("%s is required (Twilio Console > Account > API keys & tokens)", keyTwilioAuthToken)
	}
	if c.TwilioAPIBaseURL == "" || !isHTTPURL(c.TwilioAPIBaseURL) {
		add("%s must be an http(s) URL (got %q)", keyTwilioAPIBaseURL, c.TwilioAPIBaseURL)
	}
	if c.TwilioAccountSID != "" && !strings.HasPrefix(c.TwilioAccountSID, "AC") {
		add("%s must start with AC (got %q)", keyTwilioAccountSID, c.TwilioAccountSID)
	}
	if c.TwilioFrom != "" && !validSender(c.TwilioFrom) {
		add(`%s must be "whatsapp:+E164", "+E164" or a Messaging Service SID "MG..." (got %q)`, keyTwilioFrom, c.TwilioFrom)
	}
	if purpose == PurposeSend {
		if c.TwilioAccountSID == "" {
			add("%s is required to send messages", keyTwilioAccountSID)
		}
		return list
	}

	if c.OpenAIAPIKey == "" {
		add("%s is required (https://platform.openai.com/api-keys)", keyOpenAIAPIKey)
	}
	if c.Port < 0 || c.Port > 65535 {
		add("%s must be between 0 and 65535 (got %d)", keyPort, c.Port)
	}
	if c.MetricsAddr != "" {
		if msg := checkListenAddr(c.MetricsAddr, c.Port); msg != "" {
			add("%s %s (got %q)", keyMetricsAddr, msg, c.MetricsAddr)
		}
	}
	if c.PublicURL != "" {
		if msg := checkPublicURL(c.PublicURL); msg != "" {
			add("%s %s (got %q)", keyPublicURL, msg, c.PublicURL)
		}
	}
	if !isHTTPURL(c.OpenAIBaseURL) {
		add("%s must be an http(s) URL (got %q)", keyOpenAIBaseURL, c.OpenAIBaseURL)
	}
	if u, err := url.Parse(c.OpenAIRealtimeURL); err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
		add("%s must be a ws(s) URL (got %q)", keyOpenAIRealtimeURL, c.OpenAIRealtimeURL)
	}
	if c.OpenAIRealtimeModel == "" {
		add("%s must not be empty", keyOpenAIRealtimeModel)
	}
	switch c.SpeechBackend {
	case SpeechRealtime:
	case SpeechLive:
		if u, err := url.Parse(c.OpenAILiveURL); err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
			add("%s must be a ws(s) URL (got %q)", keyOpenAILiveURL, c.OpenAILiveURL)
		}
		if c.OpenAILiveModel == "" {
			add("%s must not be empty with %s=%s", keyOpenAILiveModel, keySpeechBackend, SpeechLive)
		}
		if c.OpenAIModel == "" {
			add("%s must not be empty with %s=%s: it is the model GPT-Live delegates to", keyOpenAIModel, keySpeechBackend, SpeechLive)
		}
	default:
		add("%s must be %s or %s (got %q)", keySpeechBackend, SpeechRealtime, SpeechLive, c.SpeechBackend)
	}
	switch c.AssistantBackend {
	case BackendResponses:
		if c.OpenAIModel == "" {
			add("%s must not be empty with %s=%s", keyOpenAIModel, keyAssistantBackend, BackendResponses)
		}
	case BackendAssistants:
		if c.OpenAIAssistantID == "" {
			add("%s is required with %s=%s", keyOpenAIAssistantID, keyAssistantBackend, BackendAssistants)
		}
	default:
		add("%s must be %s or %s (got %q)", keyAssistantBackend, BackendResponses, BackendAssistants, c.AssistantBackend)
	}
	if known, ok := voices[c.SpeechBackend]; ok && !slices.Contains(known, c.Voice) && !strings.HasPrefix(c.Voice, "voice_") {
		add("%s %q is not a voice of %s=%s: use one of %s, or a custom voice id (voice_...)",
			keyVoice, c.Voice, keySpeechBackend, c.SpeechBackend, strings.Join(known, ", "))
	}
	if c.Temperature < 0 || c.Temperature > 2 {
		add("%s must be between 0 and 2 (got %g)", keyTemperature, c.Temperature)
	}
	if c.AISpeaksFirst && c.Greeting == "" {
		add("%s must not be empty with %s=true", keyGreeting, keyAISpeaksFirst)
	}
	if c.TurnDetection != TurnServerVAD && c.TurnDetection != TurnSemanticVAD {
		add("%s must be %s or %s (got %q)", keyTurnDetection, TurnServerVAD, TurnSemanticVAD, c.TurnDetection)
	}
	for _, n := range c.AllowedNumbers {
		if !e164.MatchString(n) {
			add("%s: %q is not an E.164 number such as +15551234567", keyAllowedNumbers, n)
		}
	}
	if c.WSTokenTTL <= 0 {
		add("%s must be positive (got %s)", keyWSTokenTTL, c.WSTokenTTL)
	}
	if c.ReplyInlineTimeout <= 0 || c.ReplyInlineTimeout >= TwilioWebhookLimit {
		add("%s must be positive and below Twilio's %s webhook limit (got %s)", keyReplyInlineTimeout, TwilioWebhookLimit, c.ReplyInlineTimeout)
	}
	if c.ShutdownDrain <= 0 {
		add("%s must be positive (got %s)", keyShutdownDrain, c.ShutdownDrain)
	}
	if c.OpenAIOpenTimeout <= 0 {
		add("%s must be positive (got %s)", keyOpenAIOpenTimeout, c.OpenAIOpenTimeout)
	}
	if c.StreamIdleTimeout <= 0 {
		add("%s must be positive (got %s)", keyStreamIdleTimeout, c.StreamIdleTimeout)
	}
	if msg := checkDatabaseURL(c.DatabaseURL); msg != "" {
		add("%s "+msg, keyDatabaseURL)
	}
	if c.DatabaseSchema != "" {
		switch {
		case !c.Postgres():
			add("%s applies only to PostgreSQL (a postgres:// %s)", keyDatabaseSchema, keyDatabaseURL)
		case !sqlIdentifier.MatchString(c.DatabaseSchema):
			add("%s must be a lower-case SQL identifier such as gateway_prod (got %q)", keyDatabaseSchema, c.DatabaseSchema)
		}
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			add("%s must be a redis://, rediss:// or unix:// URL", keyRedisURL) // the URL may hold a password: not quoted
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("%s must be debug, info, warn or error (got %q)", keyLogLevel, c.LogLevel)
	}
	return append(list, c.toolProblems()...)
}

// MinSigningSecretLen is the shortest TOOLS_SIGNING_SECRET accepted: a
// short secret can be guessed from one signed request.
const MinSigningSecretLen = 16

// sipAddress is what a sip: TRANSFER_NUMBER may be: sip:user@host, with
// an optional port and parameters or headers.
var sipAddress = regexp.MustCompile(`^sip:[^@\s]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?([;?]\S*)?$`)

// toolProblems lists what is wrong with the settings of tools.
func (c Config) toolProblems() []problem {
	var list []problem
	add := func(format string, key string, args ...any) {
		list = append(list, problem{key: key, text: fmt.Sprintf(format, append([]any{key}, args...)...)})
	}
	if len(c.Tools.Tools) > 0 {
		switch {
		case c.ToolsSigningSecret == "":
			add("%s is required: %s has HTTP tools, and every request to them is signed with it", keyToolsSigningSecret, keyToolsFile)
		case len(c.ToolsSigningSecret) < MinSigningSecretLen:
			add("%s must be at least %d characters (such as the output of `openssl rand -hex 32`)", keyToolsSigningSecret, MinSigningSecretLen)
		}
	}
	if c.ToolHoldAfter < 0 {
		add("%s must be positive, or 0 for no holding phrase (got %s)", keyToolHoldAfter, c.ToolHoldAfter)
	}
	if c.ToolMaxCallsPerTurn < 1 {
		add("%s must be at least 1 (got %d)", keyToolMaxCallsPerTurn, c.ToolMaxCallsPerTurn)
	}
	if c.TransferNumber != "" {
		if !e164.MatchString(c.TransferNumber) && !sipAddress.MatchString(c.TransferNumber) {
			add("%s must be an E.164 number such as +15551234567 or a SIP address such as sip:desk@example.com (got %q)",
				keyTransferNumber, c.TransferNumber)
		}
		if c.TwilioAccountSID == "" {
			add("%s needs %s: a transfer goes through Twilio's REST API", keyTransferNumber, keyTwilioAccountSID)
		}
	}
	if len(c.Tools.MCP) > 0 {
		if c.SpeechBackend == SpeechLive {
			add("%s has MCP servers, which %s=%s cannot use (GPT-Live's delegation names no MCP server): use %s=%s, or remove them",
				keyToolsFile, keySpeechBackend, SpeechLive, keySpeechBackend, SpeechRealtime)
		}
		if c.AssistantBackend == BackendAssistants {
			add("%s has MCP servers, which %s=%s cannot use: use %s=%s, or remove them",
				keyToolsFile, keyAssistantBackend, BackendAssistants, keyAssistantBackend, BackendResponses)
		}
	}
	return append(list, c.Tools.problems(c.ToolsFile)...)
}

// sqliteExtensions are the endings a SQLite DATABASE_URL may have: a
// value without one is a mistake (a mistyped URL, a stray word), not a
// file the operator meant to create.
var sqliteExtensions = []string{".db", ".sqlite", ".sqlite3"}

// urlScheme matches the scheme of a value that looks like a URL.
var urlScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// checkDatabaseURL says what is wrong with a DATABASE_URL, or "". The
// value may hold a password, so the message never quotes it; it quotes a
// scheme at most.
func checkDatabaseURL(s string) string {
	if s == "" {
		return "must not be empty (a SQLite file path or a postgres:// URL)"
	}
	if m := urlScheme.FindStringSubmatch(s); m != nil {
		switch m[1] {
		case "postgres", "postgresql": // as Config.Postgres and pgx spell them
			if _, err := url.Parse(s); err != nil {
				return "must be a postgres://user:password@host:port/database URL"
			}
			return ""
		}
		return fmt.Sprintf("has the unknown scheme %q: use postgres:// (or postgresql://) for PostgreSQL, "+
			"or a file path for the embedded SQLite database", m[1])
	}
	if strings.Contains(s, "@") {
		return "looks like a URL with credentials but has no postgres:// scheme"
	}
	lower := strings.ToLower(s)
	for _, ext := range sqliteExtensions {
		if strings.HasSuffix(lower, ext) && len(lower) > len(ext) && !strings.HasSuffix(lower, "/"+ext) {
			return ""
		}
	}
	return "must be a postgres:// URL or a SQLite file path ending in " +
		strings.Join(sqliteExtensions[:len(sqliteExtensions)-1], ", ") + " or " + sqliteExtensions[len(sqliteExtensions)-1] +
		" (such as ./data/gateway.db)"
}

// checkListenAddr says what is wrong with addr as a listening address
// ("host:port", host optional) beside the main server's port, or "".
func checkListenAddr(addr string, port int) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "must be host:port or :port, such as 127.0.0.1:9090"
	}
	n, err := strconv.Atoi(p)
	switch {
	case err != nil || n < 0 || n > 65535:
		return "must end with a port between 0 and 65535"
	case n != 0 && n == port:
		return fmt.Sprintf("must not use %s's port %d: that is the public listener", keyPort, port)
	}
	return ""
}

// checkPublicURL returns what is wrong with a PUBLIC_URL, or "".
func checkPublicURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "must be an absolute URL such as https://gateway.example.com"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "must not have a query or fragment"
	}
	switch {
	case httpsOrLoopback(u):
		return ""
	case u.Scheme == "http":
		return "must use https (Twilio calls it over the internet; http is allowed for loopback only)"
	default:
		return "must be an https URL"
	}
}

// httpsOrLoopback reports whether u is https, or http to a loopback host.
func httpsOrLoopback(u *url.URL) bool {
	return u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func validSender(s string) bool {
	if strings.HasPrefix(s, "MG") {
		return len(s) > 2
	}
	return e164.MatchString(strings.TrimPrefix(s, "whatsapp:"))
}
