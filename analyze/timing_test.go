package analyze

import (
	"math"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// TestTimingByHand follows a connection through a few exchanges whose
// figures can be worked out on paper (times in µs from 1 s):
//
//	t=0   request  → 1 outstanding
//	t=10  request  → 2
//	t=30  response → 1
//	t=40  response → 0   (idle from here)
//	t=100 request  → 1   (60 µs gap; the client reacted 60 µs after the last response)
//	t=150 response → 0
func TestTimingByHand(t *testing.T) {
	var tm timing
	at := func(us int64) int64 { return 1e9 + us*1e3 }
	tm.request(at(0), 1, 1)
	tm.request(at(10), 2, 2)
	tm.response(at(30), 1)
	tm.response(at(40), 0)
	tm.request(at(100), 1, 3)
	tm.response(at(150), 0)
	r := tm.report(3, 0)
	// Outstanding × time: 1×10 + 2×20 + 1×10 + 0×60 + 1×50 = 110 µs over 150.
	if want := 110.0 / 150; math.Abs(r.OutstandingMean-want) > 0.01 {
		t.Errorf("outstanding mean %.3f, want %.3f", r.OutstandingMean, want)
	}
	if r.OutstandingPeak != 2 || r.IdleShare != 0.4 || r.SpanS != 0 {
		t.Errorf("peak %d, idle share %.3f, span %.6f: want 2, 0.4, 0 (150 µs rounds to 0 ms)", r.OutstandingPeak, r.IdleShare, r.SpanS)
	}
	if r.IdleGaps.Count != 1 || r.IdleGaps.MeanUS != 60 || r.IdleGaps.Distribution["<100µs"] != 1 {
		t.Errorf("idle gaps %+v, want one of 60 µs", r.IdleGaps)
	}
	if r.ClientReaction.Count != 1 || r.ClientReaction.MeanUS != 60 {
		t.Errorf("client reaction %+v, want one of 60 µs", r.ClientReaction)
	}
	if got := r.OutstandingTime; got["0"] != 0.4 || got["1"] != 0.467 || got["2-3"] != 0.133 {
		t.Errorf("time by level %v, want 0: 0.4, 1: 0.467, 2-3: 0.133", got)
	}
	if math.Abs(r.IdleS-60e-6) > 1e-9 || math.Abs(r.OutstandingRequestS-110e-6) > 1e-9 {
		t.Errorf("idle %g s, outstanding %g request-s; want 60e-6 and 110e-6", r.IdleS, r.OutstandingRequestS)
	}
}

// TestTimingSeries: the bins double in width as time goes on and keep
// every response and all the outstanding time.
func TestTimingSeries(t *testing.T) {
	var tm timing
	ts := int64(1e9)
	reqs := uint64(0)
	n := 0
	// 3 s of traffic: every 100 µs a request, answered 300 µs later, so 3
	// are outstanding in the steady state; a 200 ms pause in the middle.
	var pending []int64
	for i := 0; i < 30000; i++ {
		if i == 15000 {
			for _, p := range pending {
				n--
				tm.response(p, n)
			}
			pending = pending[:0]
			ts += int64(200 * time.Millisecond)
		}
		for len(pending) > 0 && pending[0] <= ts {
			n--
			tm.response(pending[0], n)
			pending = pending[1:]
		}
		reqs++
		n++
		tm.request(ts, n, reqs)
		pending = append(pending, ts+300e3)
		ts += 100e3
	}
	for _, p := range pending {
		n--
		tm.response(p, n)
	}
	r := tm.report(reqs, 300)
	s := r.Series
	if s == nil {
		t.Fatal("no series")
	}
	if len(s.Responses) > seriesBins || s.BinMS <= 10 {
		t.Errorf("%d bins of %.0f ms: want at most %d, wider than the first 10 ms", len(s.Responses), s.BinMS, seriesBins)
	}
	var area float64
	for i := range s.Outstanding {
		w := s.BinMS / 1e3
		if i == len(s.Outstanding)-1 {
			w = r.SpanS - float64(i)*s.BinMS/1e3 // the last bin may be cut short
		}
		area += s.Outstanding[i] * w
	}
	// The series starts at the 256th request: 255 × 100 µs × 3 outstanding earlier.
	want := r.OutstandingRequestS - 255*100e-6*3
	if math.Abs(area-want) > 0.01*want {
		t.Errorf("series holds %.4f request-s, the connection %.4f", area, want)
	}
	if r.IdleShare < 0.05 || r.IdleShare > 0.07 {
		t.Errorf("idle share %.3f, want about 0.2/3.2", r.IdleShare)
	}
	if math.Abs(r.OutstandingMean-r.LittlesLaw) > 0.01*r.OutstandingMean {
		t.Errorf("outstanding mean %.3f, Little's law %.3f: every request was answered, they must agree", r.OutstandingMean, r.LittlesLaw)
	}
}

// TestTimingLittlesLaw: on a whole synthetic capture the time-weighted
// mean of outstanding requests is rate × mean latency, and it is the
// closed-loop concurrency the generator kept.
func TestTimingLittlesLaw(t *testing.T) {
	data, _ := genCapture(t, synth.Config{Connections: 1, Requests: 20000, InFlight: 32, ClientBatch: 8, ServerBatch: 8,
		WriteGap: 3 * time.Microsecond, RTT: 20 * time.Microsecond, ServiceTime: 200 * time.Microsecond, Seed: 5})
	_, rep := runPipeline(t, data, DefaultConfig())
	var busy *ConnReport
	for _, c := range rep.Connections {
		if busy == nil || c.Requests > busy.Requests {
			busy = c
		}
	}
	tm := busy.Timing
	if tm == nil {
		t.Fatal("no timing")
	}
	if math.Abs(tm.OutstandingMean-tm.LittlesLaw) > 0.02*tm.OutstandingMean {
		t.Errorf("outstanding mean %.2f, Little's law %.2f", tm.OutstandingMean, tm.LittlesLaw)
	}
	if tm.OutstandingPeak != 32 || tm.OutstandingMean < 25 || tm.IdleShare > 0.01 {
		t.Errorf("peak %d, mean %.1f, idle %.3f: a closed loop of 32 against a server that is the slow side keeps ~32 outstanding and is never idle",
			tm.OutstandingPeak, tm.OutstandingMean, tm.IdleShare)
	}
	for _, d := range busy.DiagnosisCodes {
		if d == CodeClientBound {
			t.Errorf("flagged %s although the server is the slow side", d)
		}
	}
}

// TestTimingClockExtremes: a pcapng may carry any timestamp; a connection
// near the end of int64 time, or spanning most of it, must neither panic
// nor report nonsense.
func TestTimingClockExtremes(t *testing.T) {
	for _, c := range []struct {
		name  string
		start int64
		step  int64
	}{
		{"near the end of int64", math.MaxInt64 - 541e6, 1e6},
		{"from before 1970 to far after", math.MinInt64 + 1, math.MaxInt64 / 300},
		{"negative", -5e9, 1e6},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tm timing
			ts := c.start
			n := 0
			for i := 0; i < 600; i++ {
				n++
				tm.request(ts, n, uint64(i+1))
				if ts > math.MaxInt64-c.step {
					break
				}
				ts += c.step / 2
				n--
				tm.response(ts, n)
				if ts > math.MaxInt64-c.step {
					break
				}
				ts += c.step / 2
			}
			r := tm.report(600, 1)
			if r.IdleShare < 0 || r.IdleShare > 1 || r.OutstandingMean < 0 || r.OutstandingMean > 1 {
				t.Errorf("idle %v, outstanding mean %v", r.IdleShare, r.OutstandingMean)
			}
			if s := r.Series; s != nil {
				for i, v := range s.Outstanding {
					if v < 0 || v > 1.01 || s.Idle[i] < 0 || s.Idle[i] > 1.001 {
						t.Errorf("bin %d: outstanding %v idle %v", i, v, s.Idle[i])
					}
				}
			}
		})
	}
}

// TestSeriesBinCache: the series with its cached bin fills the same bins as
// one that divides at every event (the code before the cache), over
// clocks that fold the bins many times, step back and jump.
func TestSeriesBinCache(t *testing.T) {
	for _, c := range []struct {
		name  string
		start int64
		steps []int64 // cycled
	}{
		{"steady", 1e18, []int64{3e3, 7e3, 11e3}},
		{"folding", 0, []int64{1e6, 9e6, 4e6, 25e6}},
		{"stepping back", 5e9, []int64{4e6, -3e6, 8e6, -1e6, 20e6}},
		{"long jumps", -7e18, []int64{1e3, 1e17, 5e3, 3e16}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, want := &series{start: c.start, width: seriesBin0}, &refSeries{series{start: c.start, width: seriesBin0}}
			ts, n := c.start, 0
			for i := 0; i < 5000; i++ {
				step := c.steps[i%len(c.steps)]
				next := ts + step
				if (step > 0) != (next > ts) {
					break // int64 overflow: the clock ends here
				}
				got.add(ts, next, n)
				want.add(ts, next, n)
				ts = next
				if i%3 == 0 {
					got.request(ts)
					want.request(ts)
					n++
				} else {
					got.response(ts)
					want.response(ts)
					n = max(n-1, 0)
				}
			}
			if got.width != want.width || got.n != want.n || got.resp != want.resp || got.reqs != want.reqs ||
				got.area != want.area || got.idle != want.idle {
				t.Errorf("cached: width %d, %d bins, %v requests; dividing: width %d, %d bins, %v requests",
					got.width, got.n, got.reqs[:got.n], want.width, want.n, want.reqs[:want.n])
			}
		})
	}
}

// refSeries is series without the cache: every lookup divides.
type refSeries struct{ series }

func (s *refSeries) bin(rel uint64) int {
	for rel/s.width >= seriesBins && s.width < seriesMaxWidth {
		s.fold()
	}
	i := int(min(rel/s.width, seriesBins-1))
	s.n = max(s.n, i+1)
	return i
}

func (s *refSeries) request(ts int64)  { s.reqs[s.bin(s.rel(ts))]++ }
func (s *refSeries) response(ts int64) { s.resp[s.bin(s.rel(ts))]++ }

func (s *refSeries) add(from, to int64, n int) {
	f, t := s.rel(from), s.rel(to)
	last := s.bin(t)
	for f < t {
		i := int(min(f/s.width, uint64(last)))
		end := t
		if i < last {
			end = min(uint64(i+1)*s.width, t)
		}
		d := end - f
		s.area[i] += float64(n) * float64(d)
		if n == 0 {
			s.idle[i] += d
		}
		f = end
	}
}
