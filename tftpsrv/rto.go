package tftpsrv

import "time"

// minRTO is the shortest retransmission timeout the sender uses, however
// fast the measured round trip. Below it, a client that is briefly slow
// (a PXE ROM writing a block, a loaded host) would get many needless
// duplicates; above it, each lost packet on a LAN costs a noticeable
// pause. Linux TCP uses 200 ms for the same trade-off with far more traffic
// at stake.
const minRTO = 100 * time.Millisecond

// rtoEstimator is the retransmission timeout of one transfer, after RFC
// 6298: smoothed round-trip time plus four deviations, doubled on each
// timeout, kept between minRTO and the ceiling (the server's Timeout).
// Before the first sample it is the ceiling, so the first packet to a slow
// client gets the full wait.
type rtoEstimator struct {
	srtt, rttvar time.Duration
	cur          time.Duration
	ceil         time.Duration
}

func newRTOEstimator(ceil time.Duration) rtoEstimator {
	return rtoEstimator{cur: ceil, ceil: ceil}
}

func (e *rtoEstimator) timeout() time.Duration { return e.cur }

// sample records the round trip of a packet that was sent once only.
func (e *rtoEstimator) sample(rtt time.Duration) {
	if e.srtt == 0 {
		e.srtt, e.rttvar = rtt, rtt/2
	} else {
		dev := e.srtt - rtt
		if dev < 0 {
			dev = -dev
		}
		e.rttvar = (3*e.rttvar + dev) / 4
		e.srtt = (7*e.srtt + rtt) / 8
	}
	e.cur = min(max(e.srtt+4*e.rttvar, minRTO), e.ceil)
}

// backoff doubles the timeout after a retransmission, so a congested path
// or a slow client is not flooded.
func (e *rtoEstimator) backoff() {
	e.cur = min(2*e.cur, e.ceil)
}
