package protocol

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEveryKmsgKeyIsClassified walks every API key kmsg knows: each must be
// explicitly a client API or a broker API. A kmsg upgrade that brings a new
// key fails here until someone decides who sends it (until then the proxy
// does not offer it).
func TestEveryKmsgKeyIsClassified(t *testing.T) {
	known := 0
	for k := int16(0); k < 1000; k++ {
		a, _ := AudienceOf(k)
		if kmsg.RequestForKey(k) == nil {
			if a != Unclassified {
				t.Errorf("key %d is classified but kmsg does not know it", k)
			}
			continue
		}
		known++
		if a == Unclassified {
			t.Errorf("%s (key %d) is not classified: add it to AudienceOf as Clients or Brokers", kmsg.NameForKey(k), k)
		}
	}
	if known < 90 {
		t.Fatalf("only %d kmsg keys found; the walk is broken", known)
	}
}

// TestBrokerOnlyAPIsAreNeverForClients: the inter-broker and controller
// APIs a client must never reach through the proxy's identity.
func TestBrokerOnlyAPIsAreNeverForClients(t *testing.T) {
	for _, name := range []string{"LeaderAndISR", "StopReplica", "UpdateMetadata", "ControlledShutdown",
		"WriteTxnMarkers", "Vote", "BeginQuorumEpoch", "EndQuorumEpoch", "AlterPartition", "Envelope",
		"FetchSnapshot", "BrokerRegistration", "BrokerHeartbeat", "AllocateProducerIDs", "ControllerRegistration",
		"AssignReplicasToDirs", "UpdateRaftVoter", "InitializeShareGroupState", "ReadShareGroupState",
		"WriteShareGroupState", "DeleteShareGroupState", "ReadShareGroupStateSummary"} {
		key, ok := keyNamed(name)
		if !ok {
			t.Errorf("kmsg has no API named %s", name)
			continue
		}
		if a, _ := AudienceOf(key); a != Brokers {
			t.Errorf("%s (key %d): audience %d, want Brokers", name, key, a)
		}
		if _, ok := ClientMaxVersion(key); ok {
			t.Errorf("%s (key %d) offered to clients", name, key)
		}
	}
	if hi, ok := ClientMaxVersion(24); !ok || hi != 3 {
		t.Errorf("AddPartitionsToTxn: offered %v up to %d, want v3 (v4+ is the brokers')", ok, hi)
	}
}

func keyNamed(name string) (int16, bool) {
	for k := int16(0); k < 1000; k++ {
		if kmsg.RequestForKey(k) != nil && kmsg.NameForKey(k) == name {
			return k, true
		}
	}
	return 0, false
}
