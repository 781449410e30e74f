package analyze

import (
	"fmt"
	"math"

	"github.com/cqlsniff/cqlsniff/capture"
)

// SocketCounts are a connection's socket calls that moved data, seen from
// one process, since the first such call the counter saw. Calls that
// failed, returned EAGAIN or end of file, and MSG_PEEK receives are not
// counted, so Sends is the number of times the process handed the kernel
// bytes to send. Package sockcount counts them with eBPF.
type SocketCounts struct {
	Sends, Recvs         uint64
	SendBytes, RecvBytes uint64
	// PID and Comm are the process (thread group id and its leader's name,
	// as ps shows them) that last made a call on the socket, in the host's
	// pid namespace.
	PID  uint32
	Comm string
}

// SocketKey is the connection seen from the process that made the calls:
// Local is its own end.
type SocketKey struct {
	Local, Remote capture.Endpoint
}

// Flow returns the direction-independent key of the connection, the one
// capture.KeyOf gives its packets, so that socket counts join the wire's
// connections.
func (k SocketKey) Flow() capture.FlowKey {
	if k.Remote.Less(k.Local) {
		return capture.FlowKey{A: k.Remote, B: k.Local}
	}
	return capture.FlowKey{A: k.Local, B: k.Remote}
}

// SyscallReport is what the kernel counted for one end of a connection:
// its socket send and receive calls that moved data (SocketCounts).
type SyscallReport struct {
	Sends         uint64   `json:"sends"`
	Recvs         uint64   `json:"recvs"`
	SendBytes     uint64   `json:"send_bytes"`
	RecvBytes     uint64   `json:"recv_bytes"`
	FramesPerSend *float64 `json:"frames_per_send"` // frames this end sent / its send calls
	RecvsPerFrame *float64 `json:"recvs_per_frame"` // its receive calls / frames it received
	PID           uint32   `json:"pid"`
	Comm          string   `json:"comm"`
	// Partial says the capture and the kernel's counters did not cover the
	// same traffic: the bytes this end sent or received by the kernel's count
	// and on the wire differ by more than 2% (kernel drops, a capture stopped
	// while traffic went on). The two ratios are then scaled by bytes (an
	// estimate), and no diagnosis rests on them.
	Partial bool `json:"partial,omitempty"`
}

// maxBytesSkew is how far the kernel's byte counts may stray from the
// wire's before the two are taken for different spans of traffic.
const maxBytesSkew = 0.02

// SetSyscalls hands the analyzer the kernel's per-connection counts (a copy
// it may keep). Reports join them to connections by their endpoints. Call
// it from the goroutine that feeds the analyzer (a Pipeline does, through its HostReader).
func (a *Analyzer) SetSyscalls(m map[SocketKey]SocketCounts) { a.rep.sys = m }

// withSyscalls returns r with the kernel's counts joined and the
// diagnoses they make exact; r itself is shared with earlier reports and
// is not modified.
func (m *merger) withSyscalls(r *ConnReport) *ConnReport {
	if m.sys == nil || !r.rolesKnown {
		return r
	}
	cn, cok := m.sys[SocketKey{Local: r.clientEP, Remote: r.serverEP}]
	sn, sok := m.sys[SocketKey{Local: r.serverEP, Remote: r.clientEP}]
	if !cok && !sok {
		return r
	}
	cp := *r
	cw, sw := wireSegments(r.ClientSegments), wireSegments(r.ServerSegments)
	if cok {
		cp.ClientSyscalls = sysReport(cn, cw, sw)
	}
	if sok {
		cp.ServerSyscalls = sysReport(sn, sw, cw)
	}
	cp.diagnoses = exactDiagnoses(&cp, r.diagnoses)
	cp.DiagnosisCodes = codes(cp.diagnoses)
	return &cp
}

// wireSegments is w with the bytes the kernel saw: for TLS, the records'
// TCP bytes, not the plaintext.
func wireSegments(w SegmentStats) SegmentStats {
	if w.TLS != nil {
		w.Bytes = w.TLS.WireBytes
	}
	return w
}

func codes(ds []Diagnosis) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Code)
	}
	return out
}

// sysReport joins one end's kernel counts to what the wire showed it send
// (out) and receive (in).
func sysReport(n SocketCounts, out, in SegmentStats) *SyscallReport {
	r := &SyscallReport{Sends: n.Sends, Recvs: n.Recvs, SendBytes: n.SendBytes, RecvBytes: n.RecvBytes, PID: n.PID, Comm: n.Comm}
	// Calls in the span the capture saw: all of them when the byte counts
	// agree, else in proportion to the bytes.
	sends, recvs := float64(n.Sends), float64(n.Recvs)
	if skewed(out.Bytes, n.SendBytes) || skewed(in.Bytes, n.RecvBytes) {
		r.Partial = true
		sends = scale(sends, out.Bytes, n.SendBytes)
		recvs = scale(recvs, in.Bytes, n.RecvBytes)
	}
	if sends > 0 && out.Frames > 0 {
		v := round2(float64(out.Frames) / sends)
		r.FramesPerSend = &v
	}
	if in.Frames > 0 && (n.Recvs == 0 || recvs > 0) {
		v := round2(recvs / float64(in.Frames))
		r.RecvsPerFrame = &v
	}
	return r
}

func skewed(wire, kernel uint64) bool {
	if wire == kernel {
		return false
	}
	return math.Abs(float64(wire)-float64(kernel)) > maxBytesSkew*float64(max(wire, kernel))
}

// scale is calls × wire/kernel bytes (0 when the kernel counted no bytes).
func scale(calls float64, wire, kernel uint64) float64 {
	if kernel == 0 {
		return 0
	}
	return calls * float64(wire) / float64(kernel)
}

// Exact thresholds, used when the kernel's counts exist. A side with
// requests in flight together that makes (almost) one send call per frame
// does not buffer its writes, whatever the wire shows; one that makes more
// than one receive call per frame while frames were waiting reads header
// and body apart (or in tiny reads).
const (
	maxUnbufferedFramesPerSend = 1.3
	minExactFrames             = 100
	minReadsInFlight           = 2
)

// exactDiagnoses replaces the wire's estimate of unbuffered writes with the
// kernel's count where there is one, and adds the read-side findings.
func exactDiagnoses(r *ConnReport, wire []Diagnosis) []Diagnosis {
	if r.ClientSyscalls == nil && r.ServerSyscalls == nil || r.TLS != nil && !r.TLS.Decrypted {
		// (Without the CQL inside a TLS connection there are no frames to
		// divide the calls by: the records' evidence stands.)
		return wire
	}
	var out []Diagnosis
	for _, d := range wire {
		if (d.Code == CodeClientUnbuffered && exact(r.ClientSyscalls)) || (d.Code == CodeServerUnbuffered && exact(r.ServerSyscalls)) {
			continue // decided below from the exact counts
		}
		out = append(out, d)
	}
	mech := func(w SegmentStats, nagle bool) string {
		switch {
		case nagle:
			return "nagle"
		case w.FramesPerSegment > 1.05:
			return "autocorking"
		}
		return ""
	}
	nagle := false
	for _, d := range wire {
		nagle = nagle || d.Code == CodeClientNagle
	}
	type side struct {
		name, who, code, readCode string
		sys                       *SyscallReport
		w                         SegmentStats
		nagle                     bool
	}
	for _, s := range []side{
		{"client", r.Client, CodeClientUnbuffered, CodeClientUnbufferedReads, r.ClientSyscalls, r.ClientSegments, nagle},
		{"server", r.Server, CodeServerUnbuffered, CodeServerUnbufferedReads, r.ServerSyscalls, r.ServerSegments, false},
	} {
		if !exact(s.sys) || r.InFlight.Mean < minReadsInFlight {
			continue
		}
		if fps := s.sys.FramesPerSend; fps != nil && *fps < maxUnbufferedFramesPerSend && s.w.Frames >= minExactFrames {
			m := mech(s.w, s.nagle)
			msg := fmt.Sprintf("%s %s sends %s: the kernel counted %d send calls for %d frames (%.2f frames per send) with %.1f requests in flight on average",
				s.name, s.who, ownWrite(map[string]string{"client": "request", "server": "response"}[s.name], *fps), s.sys.Sends, s.w.Frames, *fps, r.InFlight.Mean)
			switch m {
			case "nagle":
				msg += fmt.Sprintf("; on the wire Nagle's algorithm merged them into %d segments (%.2f frames each), which hid it", s.w.Segments, s.w.FramesPerSegment)
			case "autocorking":
				msg += fmt.Sprintf("; on the wire Linux TCP autocorking merged some into shared segments (%.2f frames per segment)", s.w.FramesPerSegment)
			}
			msg += "."
			if s.name == "client" {
				msg += " " + bufferingAdvice(r.Driver, r.DriverVersion, r.Encrypted)
			}
			out = append(out, Diagnosis{Code: s.code, Client: r.Client, Server: r.Server, Mechanism: m, Message: msg})
		}
		if rpf := s.sys.RecvsPerFrame; rpf != nil && *rpf > 1 {
			recvd := r.ServerSegments.Frames
			if s.name == "server" {
				recvd = r.ClientSegments.Frames
			}
			if recvd >= minExactFrames {
				out = append(out, Diagnosis{Code: s.readCode, Client: r.Client, Server: r.Server, Message: fmt.Sprintf(
					"%s %s reads without buffering: the kernel counted %d receive calls for %d frames (%.2f per frame) while %.1f requests were in flight on average, so frames were waiting; it reads each frame's header and body apart, or in small pieces. Read through a buffer.",
					s.name, s.who, s.sys.Recvs, recvd, *rpf, r.InFlight.Mean)})
			}
		}
	}
	return out
}

// exact reports whether an end's kernel counts cover the traffic the
// capture saw, so that diagnoses may rest on them.
func exact(s *SyscallReport) bool { return s != nil && !s.Partial }
