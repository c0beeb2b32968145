// Package wsdial opens the WebSocket connections of the OpenAI speech
// adapters: a bearer token in the handshake, a read limit on the
// connection, and a failed handshake told in the ports error vocabulary
// without the token.
package wsdial

import (
	"context"
	"fmt"
	"net/http"

	"github.com/coder/websocket"

	"github.com/convgateway/gateway/ports"
)

// Dial opens a WebSocket to url, authenticated with apiKey as a bearer
// token, through client (nil: http.DefaultClient), and sets readLimit on
// the connection (coder/websocket's default of 32 KiB is too small for
// OpenAI's events). ctx bounds the handshake only.
//
// Errors wrap ctx.Err() when ctx ended first, ports.ErrRejected when the
// server refused the request (a 4xx other than 429: bad credentials, an
// unknown path), and ports.ErrUnavailable when it could not be reached or
// answered 429 or 5xx. They name the URL and the status, never the key.
func Dial(ctx context.Context, url, apiKey string, client *http.Client, readLimit int64) (*websocket.Conn, error) {
	header := http.Header{}
	header.Set("Authorization", "Bearer "+apiKey)
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client, HTTPHeader: header})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, classify(resp, err)
	}
	conn.SetReadLimit(readLimit)
	return conn, nil
}

// classify tells a failed handshake's error. The error text of
// coder/websocket names the URL and status, never the headers.
func classify(resp *http.Response, err error) error {
	if resp != nil {
		switch code := resp.StatusCode; {
		case code == http.StatusTooManyRequests || code >= 500:
			return fmt.Errorf("%w: status %d", ports.ErrUnavailable, code)
		case code >= 400:
			return fmt.Errorf("%w: status %d", ports.ErrRejected, code)
		}
	}
	return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
}
