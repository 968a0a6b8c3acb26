package tcp

import (
	"testing"

	"github.com/ustack/ustack/wire"
)

// TestECNNeedsEndpoints: ECN is negotiated only when the owner says it
// carries the IP ECN field (Endpoints.ECN). Without it an ECN-setup SYN
// gets a SYN-ACK that declines, from a connection and from the SYN-cookie
// path, and Config.ECN = ECNRequest does not ask: a connection that
// agreed to ECN but never saw the CE marks would not hear of congestion.
func TestECNNeedsEndpoints(t *testing.T) {
	for _, carried := range []bool{false, true} {
		ep := Endpoints{Local: cookieLocal, Remote: cookieRemote, ISS: 1000, MTU: 1500, ECN: carried}
		syn := &wire.TCPFields{SrcPort: cookieRemote.Port(), DstPort: cookieLocal.Port(), Seq: 5000,
			Flags: wire.TCPFlagSYN | wire.TCPFlagECE | wire.TCPFlagCWR, Window: 65535}
		syn.Options.MSS, syn.Options.HasTimestamp, syn.Options.TSVal = 1460, true, 77
		ece := func(f wire.TCPFlags) bool { return f&wire.TCPFlagECE != 0 }

		// A connection opened by the SYN.
		c := NewConn(NewEnv(Config{}))
		if err := c.OpenPassive(0, ep, syn); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		var synack wire.TCPFields
		v, err := wire.ParseTCP(buf[:c.PollTransmit(0, buf)])
		if err != nil {
			t.Fatal(err)
		}
		synack.Decode(v)
		if ece(synack.Flags) != carried {
			t.Errorf("Endpoints.ECN %v: SYN-ACK flags %v", carried, synack.Flags)
		}

		// The SYN-cookie listener's answer.
		_, g := newTestCookies(Config{})
		var out wire.TCPFields
		g.SynAck(0, ep, syn, &out)
		if ece(out.Flags) != carried {
			t.Errorf("Endpoints.ECN %v: cookie SYN-ACK flags %v", carried, out.Flags)
		}

		// An outgoing connection configured to ask.
		a := NewConn(NewEnv(Config{ECN: ECNRequest}))
		if err := a.Connect(0, ep); err != nil {
			t.Fatal(err)
		}
		var s wire.TCPFields
		v, err = wire.ParseTCP(buf[:a.PollTransmit(0, buf)])
		if err != nil {
			t.Fatal(err)
		}
		s.Decode(v)
		if asked := s.Flags&(wire.TCPFlagECE|wire.TCPFlagCWR) == wire.TCPFlagECE|wire.TCPFlagCWR; asked != carried {
			t.Errorf("Endpoints.ECN %v: SYN flags %v", carried, s.Flags)
		}
	}
}
