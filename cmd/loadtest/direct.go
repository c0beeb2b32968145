package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// direct is a call's twin: a client of the Realtime simulator that sends
// the call's frames straight to it, as input_audio_buffer.append events,
// and reads its audio deltas, with no gateway in between. The two paths
// share the simulator, the load generator and the machine, so the
// difference between them is what the gateway adds.
type direct struct {
	conn *websocket.Conn
	wmu  sync.Mutex
	buf  []byte
	done chan struct{}
}

// sessionUpdate configures the twin's session as the gateway configures
// a call's (mu-law both ways, server VAD).
const sessionUpdate = `{"type":"session.update","session":{"type":"realtime","output_modalities":["audio"],` +
	`"audio":{"input":{"format":{"type":"audio/pcmu"},"turn_detection":{"type":"server_vad"}},` +
	`"output":{"format":{"type":"audio/pcmu"},"voice":"alloy"}}}}`

var deltaType = []byte(`"type":"response.output_audio.delta"`)
var deltaField = []byte(`"delta":"`)

// dialDirect opens a twin session; onDelta sees the base64 audio of every
// delta, on the twin's reader goroutine.
func dialDirect(ctx context.Context, url string, onDelta func(b64 []byte)) (*direct, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+loadAPIKey)
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, fmt.Errorf("twin: dial: %w", err)
	}
	conn.SetReadLimit(1 << 20)
	d := &direct{conn: conn, buf: make([]byte, 0, 512), done: make(chan struct{})}
	if err := conn.Write(ctx, websocket.MessageText, []byte(sessionUpdate)); err != nil {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("twin: session.update: %w", err)
	}
	go func() {
		defer close(d.done)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			if !bytes.Contains(b, deltaType) {
				continue
			}
			if i := bytes.Index(b, deltaField); i >= 0 {
				onDelta(b[i+len(deltaField):])
			}
		}
	}()
	return d, nil
}

// append sends one frame (base64 audio).
func (d *direct) append(ctx context.Context, b64 []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.buf = append(append(append(d.buf[:0], `{"type":"input_audio_buffer.append","audio":"`...), b64...), `"}`...)
	return d.conn.Write(ctx, websocket.MessageText, d.buf)
}

// close ends the twin's session and waits for its reader.
func (d *direct) close() {
	_ = d.conn.Close(websocket.StatusNormalClosure, "")
	<-d.done
}
