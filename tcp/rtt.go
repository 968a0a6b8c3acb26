package tcp

import "time"

// rttEstimator computes the retransmission timeout of RFC 6298 §2.
type rttEstimator struct {
	srtt, rttvar time.Duration // srtt > 0 once a sample was taken (sample makes it at least 1 µs)
}

// valid reports whether a sample was taken.
func (e *rttEstimator) valid() bool { return e.srtt > 0 }

// sample folds an RTT measurement in (RFC 6298 §2.2 and §2.3, with
// alpha = 1/8 and beta = 1/4).
func (e *rttEstimator) sample(r time.Duration) {
	if r <= 0 {
		r = time.Microsecond
	}
	if !e.valid() {
		e.srtt = r
		e.rttvar = r / 2
		return
	}
	d := e.srtt - r
	if d < 0 {
		d = -d
	}
	e.rttvar = (3*e.rttvar + d) / 4
	e.srtt = (7*e.srtt + r) / 8
}

// rto returns the retransmission timeout before back-off: RFC 6298 (2.3),
// RTO = SRTT + max(G, K*RTTVAR), except that the variance term is at least
// minRTO, as Linux computes it (tcp_set_rto: the RTO is never below
// SRTT + TCP_RTO_MIN); RFC 6298 (2.4) would round up to one second instead.
func (e *rttEstimator) rto(initial, minRTO, maxRTO time.Duration) time.Duration {
	if !e.valid() {
		return initial
	}
	rto := e.srtt + max(4*e.rttvar, minRTO)
	return min(rto, maxRTO)
}
