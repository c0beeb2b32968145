package openairest

import (
	"bytes"
	"io"
	"net/http"
)

// maxBody bounds the request bodies the simulator reads.
const maxBody = 1 << 20

func readAll(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxBody))
}

func newBody(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
