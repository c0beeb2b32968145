// Package check holds the tests of the deployment files (Dockerfile,
// .dockerignore, compose.yaml, deploy/kubernetes, render.yaml,
// deploy/systemd): they are parsed with the tools' own parsers (BuildKit's
// Dockerfile parser and linter, compose-go, the Kubernetes API types decoded
// strictly, systemd-analyze and Caddy where installed), their invariants are
// checked against the gateway's settings (configs/.env.example), and the
// release binary, built as the Dockerfile builds it, is run as the image
// would run it.
//
// It is a module of its own so that these parsers stay out of the
// gateway's go.mod; make test runs its tests after the gateway's.
package check
