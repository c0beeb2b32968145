package main

import (
	"fmt"
	"io"
	"runtime"
)

// version is the gateway's release, stamped at link time by make release
// (and so by the Dockerfile) with -ldflags "-X main.version=VERSION"; a
// plain go build or go run says "dev". It is logged at start and printed
// by gateway version.
var version = "dev"

// printVersion writes the gateway's version line: the release, then the Go
// version and platform it was built with.
func printVersion(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("version: unexpected arguments %q", args)
	}
	fmt.Fprintf(stdout, "gateway %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
