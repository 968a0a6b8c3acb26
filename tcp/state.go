package tcp

// State is a connection state of RFC 9293 §3.3.2. There is no LISTEN: a
// listener is kept by the stack, not by a Conn.
type State uint8

// The connection states.
const (
	Closed State = iota
	SynSent
	SynReceived
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
)

var stateNames = [...]string{"CLOSED", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"}

// String returns the state's name as RFC 9293 spells it.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "INVALID"
}

// synchronized reports whether the state is one where both sides' initial
// sequence numbers are known (RFC 9293 §3.5.2).
func (s State) synchronized() bool { return s >= Established || s == SynReceived }

// canRecvData reports whether data arriving in this state is delivered
// (RFC 9293 §3.10.7.4, seventh step).
func (s State) canRecvData() bool { return s == Established || s == FinWait1 || s == FinWait2 }

// canSendData reports whether the application may queue data in this state.
func (s State) canSendData() bool { return s == Established || s == CloseWait }
