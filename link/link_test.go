package link

import "testing"

func TestMedium(t *testing.T) {
	if Ethernet.HeaderLen() != 14 || IP.HeaderLen() != 0 {
		t.Fatalf("header lengths %d %d", Ethernet.HeaderLen(), IP.HeaderLen())
	}
	if Ethernet.String() != "ethernet" || IP.String() != "ip" || Medium(0).String() != "unknown" {
		t.Fatal("Medium.String")
	}
}

func TestCapsAndFrame(t *testing.T) {
	c := CapTxChecksum | CapTSO
	if !c.Has(CapTSO) || !c.Has(CapTxChecksum|CapTSO) || c.Has(CapGRO) {
		t.Fatal("Caps.Has")
	}
	p := Packet{Buf: make([]byte, 100), N: 42}
	if len(p.Frame()) != 42 {
		t.Fatalf("Frame len %d", len(p.Frame()))
	}
}
