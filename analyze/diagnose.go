package analyze

import (
	"fmt"
	"strings"
	"time"
)

// Diagnosis codes.
const (
	CodeClientUnbuffered = "client-unbuffered-writes"
	CodeServerUnbuffered = "server-unbuffered-writes"
	CodeClientNagle      = "client-nagle"
	// With the kernel's syscall counts (live capture on the host of an end).
	CodeClientUnbufferedReads = "client-unbuffered-reads"
	CodeServerUnbufferedReads = "server-unbuffered-reads"
)

// Diagnosis is a finding about one connection, in plain words.
type Diagnosis struct {
	Code      string `json:"code"`
	Client    string `json:"client"`
	Server    string `json:"server"`
	Mechanism string `json:"mechanism,omitempty"` // what hid the writes on the wire: "autocorking" or "nagle"
	Message   string `json:"message"`
}

// Thresholds of the batching diagnoses. A side is called unbuffered when at
// least minBackToBackShare of its frames went out alone in a segment that left
// within BackToBack of the side's previous segment although both could have
// gone out together (the request of the previous one was still unanswered,
// or the request a response answers had already arrived), and that happened
// at least minBackToBack times. A buffered sender that sometimes has a single
// frame to send (Cassandra's flusher does, under light load) stays far
// below the share; a client at one request in flight never qualifies.
const (
	minBackToBack      = 30
	minBackToBackShare = 0.2
	// Nagle: client data segments never leave while earlier data is
	// unacknowledged, most leave right after the ACK that freed them, and
	// they carry several frames although requests were in flight together.
	minNagleSegs        = 30
	maxNagleUnacked     = 0.05
	minNagleAckClocked  = 0.25
	minNagleFramesShare = 1.2
)

func (c *conn) diagnose(cr *ConnReport) []Diagnosis {
	if !c.rolesKnown {
		return nil
	}
	if d, ok := c.tlsUnbuffered(cr); ok {
		return []Diagnosis{d}
	}
	var out []Diagnosis
	cw, sw := &c.w[c.cdir], &c.w[c.cdir.Other()]
	inflMean := cr.InFlight.Mean
	mk := func(code, mech, msg string) Diagnosis {
		return Diagnosis{Code: code, Client: cr.Client, Server: cr.Server, Mechanism: mech, Message: msg}
	}
	if d, ok := nagle(cw, inflMean); ok {
		out = append(out, mk(CodeClientNagle, "nagle", fmt.Sprintf(
			"client %s has Nagle's algorithm on (TCP_NODELAY off): with %.1f requests in flight on average, "+
				"%d of its %d request segments left only once all earlier data was acknowledged, %d of them within %s of the ACK that released them, "+
				"and they carry %.2f frames each, so the kernel, not the client, is batching its writes and every batch waits for a round trip. "+
				"The wire cannot show how many writes the client made; set TCP_NODELAY on the driver's sockets.",
			cr.Client, inflMean, d.acked, d.total, d.clocked, fmtDur(c.a.cfg.AckClocked), fps(cw))))
	} else if msg, mech, ok := unbuffered(cw, "client", cr.Client, inflMean, c.a.cfg.BackToBack); ok {
		if tw := cr.ClientSegments.TLS; tw != nil && tw.FramesPerRecord > 0 {
			msg += fmt.Sprintf(" Over TLS its %d frames went out in %d records (%.2f frames per record; most TLS stacks make one record of each write).",
				cw.frames, tw.AppRecords, tw.FramesPerRecord)
		}
		out = append(out, mk(CodeClientUnbuffered, mech, msg+" "+bufferingAdvice(cr.Driver, cr.DriverVersion, cr.Encrypted)))
	}
	if msg, mech, ok := unbuffered(sw, "server", cr.Server, inflMean, c.a.cfg.BackToBack); ok {
		out = append(out, mk(CodeServerUnbuffered, mech, msg))
	}
	if d := clientBound(cr, wireEvidence); d != nil {
		d.Message += clientBoundAdvice
		out = append(out, *d)
	}
	return out
}

type nagleEvidence struct{ acked, total, clocked uint64 }

func nagle(w *dirStats, inflMean float64) (nagleEvidence, bool) {
	e := nagleEvidence{acked: w.sentAcked, total: w.sentAcked + w.sentUnacked, clocked: w.ackClocked}
	if e.total < minNagleSegs || inflMean < 2 {
		return e, false
	}
	if float64(w.sentUnacked) > maxNagleUnacked*float64(e.total) {
		return e, false
	}
	if float64(w.ackClocked) < minNagleAckClocked*float64(w.sentAcked) {
		return e, false
	}
	return e, fps(w) >= minNagleFramesShare
}

func unbuffered(w *dirStats, side, who string, inflMean float64, b2b time.Duration) (msg, mech string, ok bool) {
	if w.backToBackSingle < minBackToBack || float64(w.backToBackSingle) < minBackToBackShare*float64(w.frames) {
		return "", "", false
	}
	what, answer := "request", "its answer"
	if side == "server" {
		what, answer = "response", "the request it answers had already arrived"
	}
	var b strings.Builder
	// (The wire cannot count writes: autocorking alone puts some of an
	// unbuffered sender's frames in shared segments, so no quantifier.)
	fmt.Fprintf(&b, "%s %s sends %ss in separate writes: ", side, who, what)
	if side == "client" {
		fmt.Fprintf(&b, "with %.1f requests in flight on average, ", inflMean)
	}
	fmt.Fprintf(&b, "%d of its %d segments (%.0f%%) left within %s of the previous one although ",
		w.backToBack, w.frameStarts, 100*float64(w.backToBack)/float64(w.frameStarts), fmtDur(b2b))
	if side == "client" {
		b.WriteString("the previous one's request was still waiting for " + answer)
	} else {
		b.WriteString(answer + " before the previous one was sent")
	}
	fmt.Fprintf(&b, "; %d of its %d frames (%.0f%%) went out alone that way (%.2f frames per segment overall).",
		w.backToBackSingle, w.frames, 100*float64(w.backToBackSingle)/float64(w.frames), fps(w))
	multi := w.buckets[2] + w.buckets[3] + w.buckets[4] + w.buckets[5]
	if multi > 0 && w.frameStarts > 0 && float64(multi) > 0.05*float64(w.frameStarts) {
		mech = "autocorking"
		fmt.Fprintf(&b, " %.0f%% of segments carry 2+ frames: Linux TCP autocorking merges some back-to-back writes, so the %s made more writes than the wire shows.",
			100*float64(multi)/float64(w.segments), side)
	}
	if side == "server" {
		b.WriteString(" The server should coalesce responses into one write per batch.")
	}
	return b.String(), mech, true
}

// bufferingAdvice says how to make a client buffer its writes, for the
// drivers whose write paths lab/README.md describes (by the DRIVER_NAME
// their STARTUP gives), in general for the others. tls: the connection is
// encrypted.
func bufferingAdvice(driver, version string, tls bool) string {
	d := strings.ToLower(driver)
	switch {
	case strings.Contains(d, "gocql") && tls:
		// dial.go WrapTLS: DisableCoalesce: tlsConfig != nil (v1.7.0 and v2).
		return "gocql turns write coalescing off on TLS connections (its TLS dialer sets DisableCoalesce), so WriteCoalesceWaitTime has no effect here: " +
			"only a HostDialer whose connection buffers its writes brings batching back."
	case strings.Contains(d, "gocql"):
		return "gocql coalesces writes only with ClusterConfig.WriteCoalesceWaitTime > 0 (its default is 200µs): check it is not set to 0."
	case strings.Contains(d, "java"):
		return "The Java driver's default write coalescer gathers writes per event loop: check that no pass-through WriteCoalescer replaced it."
	case strings.Contains(d, "node"):
		return "The Node.js driver joins queued requests up to socketOptions.coalescingThreshold bytes (default 65536): check it is not set to 1."
	case strings.Contains(d, "python"):
		return "The Python driver sends every request with its own send() call; it has no option to coalesce them."
	case strings.Contains(d, "scylla-rust"):
		const v030 = "scylla 0.3.0 and earlier have no write buffer at all: each request is its own write_all on the socket (0.3.1 added a BufWriter and BufReader: upgrade)"
		const v031 = "0.3.1 and later flush what is queued when the writer task wakes, which with few worker threads is often one request"
		switch v := strings.TrimPrefix(version, "v"); {
		case v == "":
			// Its STARTUP carries no version: say what each line does.
			return "The scylla Rust driver does not say its version: " + v030 + "; " + v031 + "."
		case v == "0.3.0" || strings.HasPrefix(v, "0.2.") || strings.HasPrefix(v, "0.1."):
			return strings.ToUpper(v030[:1]) + v030[1:] + "."
		}
		return "The scylla Rust driver " + v031 + "."
	}
	return "Buffer writes in the driver: coalesce the frames that are ready into one write."
}

// ownWrite is "each request in its own write", or "most requests in
// their own write" when some did share one (at least 1.1 frames per send
// call, as the kernel counted them): the claim should not overstate what
// was measured.
func ownWrite(what string, framesPerWrite float64) string {
	if framesPerWrite >= 1.1 {
		return "most " + what + "s in their own write"
	}
	return "each " + what + " in its own write"
}

func fps(w *dirStats) float64 {
	if w.segments == 0 {
		return 0
	}
	return float64(w.frames) / float64(w.segments)
}

func fmtDur(d time.Duration) string {
	if d%time.Microsecond == 0 && d < time.Millisecond {
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	}
	return fmt.Sprintf("%.1fms", float64(d)/1e6)
}
