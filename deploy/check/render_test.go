package check

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// renderBlueprint is the part of Render's Blueprint specification that
// render.yaml uses; decoding is strict, so a misspelt or unknown field
// fails the test instead of being ignored.
type renderBlueprint struct {
	Services  []renderService  `json:"services"`
	Databases []renderDatabase `json:"databases"`
}

type renderService struct {
	Type                    string         `json:"type"`
	Name                    string         `json:"name"`
	Runtime                 string         `json:"runtime"`
	Plan                    string         `json:"plan"`
	DockerfilePath          string         `json:"dockerfilePath"`
	DockerContext           string         `json:"dockerContext"`
	HealthCheckPath         string         `json:"healthCheckPath"`
	MaxShutdownDelaySeconds int            `json:"maxShutdownDelaySeconds"`
	NumInstances            int            `json:"numInstances"`
	EnvVars                 []renderEnvVar `json:"envVars"`
	IPAllowList             []renderIPRule `json:"ipAllowList"`
	Disk                    *struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		SizeGB    int    `json:"sizeGB"`
	} `json:"disk"`
}

type renderEnvVar struct {
	Key          string  `json:"key"`
	Value        *string `json:"value"`
	Sync         *bool   `json:"sync"`
	FromDatabase *struct {
		Name     string `json:"name"`
		Property string `json:"property"`
	} `json:"fromDatabase"`
	FromService *struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Property string `json:"property"`
	} `json:"fromService"`
}

type renderIPRule struct {
	Source      string `json:"source"`
	Description string `json:"description"`
}

type renderDatabase struct {
	Name         string         `json:"name"`
	Plan         string         `json:"plan"`
	DatabaseName string         `json:"databaseName"`
	User         string         `json:"user"`
	IPAllowList  []renderIPRule `json:"ipAllowList"`
}

func readRender(t testing.TB) renderBlueprint {
	t.Helper()
	var b renderBlueprint
	require.NoError(t, yaml.UnmarshalStrict(readRepoFile(t, "render.yaml"), &b), "render.yaml")
	return b
}

// webService is the Blueprint's gateway.
func webService(t testing.TB, b renderBlueprint) renderService {
	t.Helper()
	for _, s := range b.Services {
		if s.Type == "web" {
			return s
		}
	}
	t.Fatal("render.yaml has no web service")
	return renderService{}
}

// The Blueprint builds the Dockerfile, checks /health, prompts for the
// secrets (sync: false) or takes them from its own database and Key Value,
// and waits longer than SHUTDOWN_DRAIN after SIGTERM.
func TestRenderBlueprint(t *testing.T) {
	b := readRender(t)
	web := webService(t, b)
	assert.Equal(t, "docker", web.Runtime)
	assert.Equal(t, "./Dockerfile", web.DockerfilePath)
	assert.Equal(t, healthPath, web.HealthCheckPath)

	vars := map[string]renderEnvVar{}
	var names []string
	for _, v := range web.EnvVars {
		require.NotContains(t, vars, v.Key, "%s is set twice", v.Key)
		vars[v.Key] = v
		names = append(names, v.Key)
		if isSecret(v.Key) {
			assert.Nil(t, v.Value, "%s must not be inlined in render.yaml", v.Key)
			fromRender := v.FromDatabase != nil || v.FromService != nil
			prompted := v.Sync != nil && !*v.Sync
			assert.True(t, fromRender || prompted, "%s comes from a Render resource or is prompted for (sync: false)", v.Key)
		}
	}
	requireSettings(t, "render.yaml", names...)
	for _, s := range []string{"OPENAI_API_KEY", "TWILIO_AUTH_TOKEN", "PUBLIC_URL"} {
		v, ok := vars[s]
		require.True(t, ok, "render.yaml asks for %s", s)
		require.NotNil(t, v.Sync)
		assert.False(t, *v.Sync, "%s is prompted for (sync: false)", s)
	}
	if v, ok := vars["PORT"]; ok {
		assert.Equal(t, defaultPort(t), *v.Value)
	}

	// DATABASE_URL and REDIS_URL name resources of this Blueprint.
	db := vars["DATABASE_URL"].FromDatabase
	require.NotNil(t, db, "DATABASE_URL from the Blueprint's PostgreSQL")
	require.Len(t, b.Databases, 1)
	assert.Equal(t, b.Databases[0].Name, db.Name)
	assert.Equal(t, "connectionString", db.Property)
	kv := vars["REDIS_URL"].FromService
	require.NotNil(t, kv, "REDIS_URL from the Blueprint's Key Value")
	var found bool
	for _, s := range b.Services {
		found = found || (s.Type == kv.Type && s.Name == kv.Name && s.Type == "keyvalue")
	}
	assert.True(t, found, "the Key Value %q is in the Blueprint", kv.Name)
	assert.Equal(t, "connectionString", kv.Property)

	var drain string
	if v, ok := vars["SHUTDOWN_DRAIN"]; ok && v.Value != nil {
		drain = *v.Value
	}
	delay := 30 * time.Second // Render's default
	if web.MaxShutdownDelaySeconds != 0 {
		delay = time.Duration(web.MaxShutdownDelaySeconds) * time.Second
	}
	assert.Greater(t, delay, shutdownDrain(t, drain), "Render's shutdown delay must exceed SHUTDOWN_DRAIN")
	if web.Disk != nil {
		assert.Zero(t, web.MaxShutdownDelaySeconds, "Render takes no maxShutdownDelaySeconds on a service with a disk")
	}
}
