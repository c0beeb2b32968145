package twiliorest

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// gateListener is the server's listener, which can stop listening (so that
// the kernel refuses connections to its port) and listen again on the same
// address. Accept blocks while it is not listening.
type gateListener struct {
	addr net.Addr

	mu      sync.Mutex
	ln      net.Listener  // nil while refusing
	resumed chan struct{} // closed (and replaced) when listening again, or by Close
	closed  bool
}

func (g *gateListener) Accept() (net.Conn, error) {
	for {
		g.mu.Lock()
		ln, resumed, closed := g.ln, g.resumed, g.closed
		g.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if ln == nil {
			<-resumed
			continue
		}
		c, err := ln.Accept()
		if err == nil {
			return c, nil
		}
		g.mu.Lock()
		refused := g.ln != ln && !g.closed
		g.mu.Unlock()
		if !refused {
			return nil, err
		}
	}
}

func (g *gateListener) refuse() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil && !g.closed {
		_ = g.ln.Close()
		g.ln = nil
	}
}

func (g *gateListener) resume() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return net.ErrClosed
	}
	if g.ln != nil {
		return nil
	}
	ln, err := net.Listen(g.addr.Network(), g.addr.String())
	if err != nil {
		return fmt.Errorf("twiliorest: listen again on %s: %w", g.addr, err)
	}
	g.ln = ln
	close(g.resumed)
	g.resumed = make(chan struct{})
	return nil
}

func (g *gateListener) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return net.ErrClosed
	}
	g.closed = true
	close(g.resumed)
	if g.ln == nil {
		return nil
	}
	err := g.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (g *gateListener) Addr() net.Addr { return g.addr }
