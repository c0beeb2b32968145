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
// Only this package and cmd/ import viper (the dependency rules of
// ARCHITECTURE.md, enforced by test/archtest).
package configs
