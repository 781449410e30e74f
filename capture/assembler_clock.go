package capture

import "sync/atomic"

// GCInterval is how much packet time passes between two sweeps for idle
// flows and stale holes.
const GCInterval = int64(1e9)

// Drive hands the assembler's clock and sweeps to its owner: Add no longer
// sweeps by itself. A sharded pipeline, whose assemblers each see part of a
// capture, drives them all with the capture's clock so that each sweeps at
// the moment a single assembler over the whole capture would.
func (a *Assembler) Drive() { a.driven = true }

// ShareFlows makes MaxFlows bound the flows of every assembler given the
// same counter together (a sharded pipeline's workers): one evicts its own
// least recently active flow when the total would pass it.
func (a *Assembler) ShareFlows(n *atomic.Int64) { a.shared = n }

// Advance moves the clock to now (the latest packet time of the whole
// capture) if it is later.
func (a *Assembler) Advance(now int64) {
	if now > a.now {
		a.now = now
	}
}

// Sweep closes idle flows and declares stale holes lost as of now, as Add
// does every GCInterval of packet time when not driven.
func (a *Assembler) Sweep(now int64) {
	a.Advance(now)
	a.gc()
}
