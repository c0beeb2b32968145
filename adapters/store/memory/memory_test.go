package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/store/memory"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestThreadStoreConformance(t *testing.T) {
	porttest.ThreadStore(t, func(*testing.T) ports.ThreadStore { return memory.NewThreadStore() })
}

func TestDeliveryLedgerConformance(t *testing.T) {
	porttest.DeliveryLedger(t, func(*testing.T) ports.DeliveryLedger { return memory.NewThreadStore() })
}

func TestUserLocksConformance(t *testing.T) {
	porttest.UserLocks(t, func(*testing.T) ports.UserLocks { return memory.NewThreadStore() })
}

func TestLeasesConformance(t *testing.T) {
	porttest.Leases(t, func(*testing.T) ports.Leases { return memory.NewThreadStore() })
}

func TestTokenStoreConformance(t *testing.T) {
	porttest.TokenStore(t, func(*testing.T) ports.TokenStore { return memory.NewTokenStore(nil) })
}
