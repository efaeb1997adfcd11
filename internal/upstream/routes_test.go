package upstream

import "testing"

func TestRoutesPerMode(t *testing.T) {
	dir := NewDirectory()
	side := &Routes{Mode: ModeSidecar, Dir: dir, Template: "kafka-{id}.svc:9096", Brokers: map[int32]string{7: "special:1"}}
	for node, want := range map[int32]string{0: "kafka-0.svc:9096", 12: "kafka-12.svc:9096", 7: "special:1"} {
		if got, err := side.AddrFor(node); err != nil || got != want {
			t.Errorf("sidecar %d: %q %v", node, got, err)
		}
	}
	h, p, err := side.Advertise(3, "10.0.0.3", 9092)
	if err != nil || h != "kafka-3.svc" || p != 9096 {
		t.Fatalf("advertise: %s %d %v", h, p, err)
	}
	if a, ok := dir.Addr(3); !ok || a != "10.0.0.3:9092" {
		t.Fatalf("directory did not learn node 3: %q", a)
	}
	if _, err := (&Routes{Mode: ModeSidecar, Brokers: map[int32]string{0: "a:1"}}).AddrFor(1); err == nil {
		t.Fatal("unmapped node advertised")
	}

	ppb := &Routes{Mode: ModePortPerBroker, Host: "proxy", PortBase: 9100, Ports: map[int32]int{1001: 9201}}
	for node, want := range map[int32]string{0: "proxy:9100", 2: "proxy:9102", 1001: "proxy:9201"} {
		if got, err := ppb.AddrFor(node); err != nil || got != want {
			t.Errorf("port-per-broker %d: %q %v", node, got, err)
		}
	}
	if _, err := ppb.AddrFor(70000); err == nil {
		t.Fatal("port beyond 65535 accepted")
	}

	sni := &Routes{Mode: ModeSNI, SNIPattern: "b{id}.kafka.example.com", SNIPort: 9096}
	if got, _ := sni.AddrFor(4); got != "b4.kafka.example.com:9096" {
		t.Fatalf("sni addr %q", got)
	}
	for name, want := range map[string]int32{"b4.kafka.example.com": 4, "b0.kafka.example.com": 0} {
		if n, ok := sni.NodeForSNI(name); !ok || n != want {
			t.Errorf("%s: %d %v", name, n, ok)
		}
	}
	for _, name := range []string{"", "kafka.example.com", "bx.kafka.example.com", "b.kafka.example.com", "b1.kafka.example.org", "b-1.kafka.example.com", "b99999999999.kafka.example.com"} {
		if n, ok := sni.NodeForSNI(name); ok {
			t.Errorf("%q routed to %d", name, n)
		}
	}
}

func TestDirectoryChanges(t *testing.T) {
	d := NewDirectory()
	d.Learn(1, "h", 1)
	select {
	case <-d.Changes():
	default:
		t.Fatal("no change signal for a new node")
	}
	d.Learn(1, "h", 1)
	select {
	case <-d.Changes():
		t.Fatal("signal without a change")
	default:
	}
	d.Replace(map[int32]string{2: "h:2"})
	if n := d.Nodes(); len(n) != 1 || n[0] != 2 {
		t.Fatalf("nodes %v", n)
	}
}

func TestUpstreamHostsNameBootstrapAndSeenBrokers(t *testing.T) {
	dir := NewDirectory()
	r := &Routes{Mode: ModeSidecar, Dir: dir, Template: "proxy:9096", Bootstrap: []string{"boot.internal:9092", "[fd00::1]:9092"}}
	if _, _, err := r.Advertise(1, "kafka-1.internal", 9093); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, h := range r.UpstreamHosts() {
		got[h] = true
	}
	for _, want := range []string{"boot.internal", "fd00::1", "kafka-1.internal"} {
		if !got[want] {
			t.Errorf("%s missing from %v", want, got)
		}
	}
	if got["proxy"] {
		t.Error("the advertised host is not an upstream host")
	}
}
