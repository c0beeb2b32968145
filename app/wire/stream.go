package wire

import (
	"log/slog"
	"net/http"

	"github.com/convgateway/gateway/adapters/twilio/mediastream"
	"github.com/convgateway/gateway/ports"
)

// acceptStream gives the HTTP server Twilio Media Streams: it upgrades a
// media-stream request with the mediastream adapter (httpapi.AcceptStream).
func acceptStream(w http.ResponseWriter, r *http.Request, log *slog.Logger) (ports.TelephonyChannel, error) {
	ch, err := mediastream.Accept(w, r, log)
	if err != nil {
		return nil, err // not a nil *Channel in a non-nil interface
	}
	return ch, nil
}
