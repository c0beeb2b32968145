package ports_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/convgateway/gateway/ports"
)

func TestJoinErrors(t *testing.T) {
	if err := ports.JoinErrors(nil, nil); err != nil {
		t.Fatalf("JoinErrors(nil, nil) = %v, want nil", err)
	}
	one := errors.New("one")
	if err := ports.JoinErrors(nil, one); err != one {
		t.Fatalf("JoinErrors(nil, one) = %v, want one itself", err)
	}
	ended := &ports.SessionEnded{Reason: "remote_closed"}
	err := ports.JoinErrors(fmt.Errorf("shutdown: %w", ports.ErrUnavailable), nil, ended)
	if got, want := err.Error(), "shutdown: dependency unavailable; ended: remote_closed"; got != want {
		t.Errorf("text %q, want %q (one line)", got, want)
	}
	var as *ports.SessionEnded
	if !errors.Is(err, ports.ErrUnavailable) || !errors.As(err, &as) || as != ended {
		t.Errorf("errors.Is and errors.As do not see the joined errors: %v", err)
	}
}
