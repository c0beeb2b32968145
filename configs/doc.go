// Package configs is the gateway's configuration: the typed Config, its
// defaults, Validate, and Load, which layers (in rising priority) built-in
// defaults, a YAML file, a .env file in the working directory and
// environment variables, using viper.
//
// Setting names are the environment variable names of the original seeds
// (PORT, OPENAI_API_KEY, ...) so existing deployments keep working; the YAML
// file uses the same names in lower case (port, openai_api_key, ...).
// configs/.env.example and configs/gateway.example.yaml list every setting.
//
// TOOLS_FILE names a second YAML file, of the user's HTTP tools and MCP
// servers (ToolsFile; configs/tools.example.yaml). Load reads it with
// yaml.v3 rather than viper, which would lower-case the keys of the
// tools' JSON Schemas, and checks it strictly: every problem (unknown keys,
// bad schemas, names, URLs, channels, unset ${VAR} in headers) is one entry
// of the same *Problems as the settings'.
//
// Only this package and cmd/ import viper (a dependency rule the README
// states and test/archtest enforces).
package configs
