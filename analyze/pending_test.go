package analyze

import (
	"math/rand"
	"testing"
)

// TestPendingTableMatchesMap drives the table and a map with the same
// random operations, clustered stream ids included, and compares them.
func TestPendingTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var tab pendingTable
	ref := map[int16]int64{}
	for i := 0; i < 200000; i++ {
		var s int16
		switch rng.Intn(3) {
		case 0:
			s = int16(rng.Intn(64))
		case 1:
			s = int16(rng.Intn(64) * 64) // all collide on the same home slot
		default:
			s = int16(rng.Intn(32768))
		}
		switch rng.Intn(3) {
		case 0, 1:
			_, had := ref[s]
			if got := tab.put(s, pending{ts: int64(i)}); got != had {
				t.Fatalf("op %d: put(%d) replaced=%v, map says %v", i, s, got, had)
			}
			ref[s] = int64(i)
		default:
			tab.del(s)
			delete(ref, s)
		}
		if tab.len() != len(ref) {
			t.Fatalf("op %d: len %d, map %d", i, tab.len(), len(ref))
		}
		if i%1000 == 0 {
			for k, v := range ref {
				p, ok := tab.get(k)
				if !ok || p.ts != v {
					t.Fatalf("op %d: get(%d) = %v %v, want %d", i, k, p, ok, v)
				}
			}
			for j := 0; j < 100; j++ {
				k := int16(rng.Intn(32768))
				if _, ok := tab.get(k); ok != (ref[k] != 0 || func() bool { _, h := ref[k]; return h }()) {
					t.Fatalf("op %d: get(%d) found=%v disagrees with the map", i, k, ok)
				}
			}
		}
	}
}

// TestStreamReuse: a stream id reused before its answer counts the first
// request as unanswered; the answer pairs with the newer request.
func TestStreamReuse(t *testing.T) {
	q := "SELECT 1"
	qBody := queryBody(q)
	data := tcpPcap(
		frame(0x04, 0, 3, 0x07, qBody),
		frame(0x84, 0, 9, 0x08, []byte{0, 0, 0, 1}), // an answer to a request before the capture
		frame(0x04, 0, 3, 0x07, qBody),              // stream 3 again, unanswered so far
		frame(0x84, 0, 3, 0x08, []byte{0, 0, 0, 1}),
	)
	_, r := runPipeline(t, data, DefaultConfig())
	if r.Totals.Requests != 2 || r.Totals.Responses != 1 || r.Totals.StreamReuse != 1 || r.Totals.Unanswered != 1 || r.Totals.OrphanResponses != 1 {
		t.Errorf("totals %+v", r.Totals)
	}
}
