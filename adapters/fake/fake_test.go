package fake_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/convgateway/gateway/adapters/fake"
	"github.com/convgateway/gateway/ports"
	"github.com/convgateway/gateway/ports/porttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSpeechModelConformance(t *testing.T) {
	porttest.SpeechModel(t, func(*testing.T) porttest.SpeechHarness {
		m := fake.NewSpeechModel()
		return porttest.SpeechHarness{Model: m, Peer: m.Peer()}
	})
}

func TestFullDuplexModelConformance(t *testing.T) {
	porttest.SpeechModel(t, func(*testing.T) porttest.SpeechHarness {
		m := fake.NewFullDuplexModel()
		return porttest.SpeechHarness{Model: m, Peer: m.Peer()}
	})
}

func TestTelephonyConformance(t *testing.T) {
	porttest.TelephonyChannel(t, func(*testing.T) porttest.TelephonyHarness {
		ch, peer := fake.NewTelephony()
		return porttest.TelephonyHarness{Channel: ch, Peer: peer}
	})
}

func TestChatAssistantConformance(t *testing.T) {
	porttest.ChatAssistant(t, func(*testing.T) porttest.ChatHarness {
		a := fake.NewChatAssistant()
		return porttest.ChatHarness{Assistant: a, FailNext: func() { a.FailNext(nil) }, CallToolNext: a.CallToolNext}
	})
}

func TestMessageSenderConformance(t *testing.T) {
	porttest.MessageSender(t, func(*testing.T) porttest.SenderHarness {
		s := fake.NewMessageSender()
		return porttest.SenderHarness{Sender: s, Sent: s.Sent, RejectNext: s.RejectNext, RateLimitNext: s.RateLimitNext, LoseNext: s.LoseNext}
	})
}

func TestThreadStoreConformance(t *testing.T) {
	porttest.ThreadStore(t, func(*testing.T) ports.ThreadStore { return fake.NewThreadStore() })
}

func TestDeliveryLedgerConformance(t *testing.T) {
	porttest.DeliveryLedger(t, func(*testing.T) ports.DeliveryLedger { return fake.NewThreadStore() })
}

func TestUserLocksConformance(t *testing.T) {
	porttest.UserLocks(t, func(*testing.T) ports.UserLocks { return fake.NewThreadStore() })
}

func TestLeasesConformance(t *testing.T) {
	porttest.Leases(t, func(*testing.T) ports.Leases { return fake.NewThreadStore() })
}

func TestTokenStoreConformance(t *testing.T) {
	porttest.TokenStore(t, func(*testing.T) ports.TokenStore { return fake.NewTokenStore() })
}
