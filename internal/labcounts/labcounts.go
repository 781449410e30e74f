// Package labcounts reads the kernel's counts of a lab client's socket calls
// from the JSON sidecar that lab/run.py writes beside each capture in pcaps/
// (bpftrace's per-local-port send/recv calls and bytes of the client, which
// talked to 127.0.0.1:9042), keyed as the kernel's live counts are (analyze.SocketKey), so
// tests can join them to a capture as a live run with --syscalls would.
package labcounts

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
)

// Read returns the counts recorded for the capture at pcapPath (its .json
// sidecar), one entry per client connection.
func Read(pcapPath string) (map[analyze.SocketKey]analyze.SocketCounts, error) {
	b, err := os.ReadFile(strings.TrimSuffix(strings.TrimSuffix(pcapPath, ".gz"), ".pcap") + ".json")
	if err != nil {
		return nil, err
	}
	var side struct {
		ClientPID uint32 `json:"client_pid"`
		Kernel    struct {
			PerLocalPort map[string]struct {
				SendCalls uint64 `json:"send_calls"`
				SendBytes uint64 `json:"send_bytes"`
				RecvCalls uint64 `json:"recv_calls"`
				RecvBytes uint64 `json:"recv_bytes"`
			} `json:"per_local_port"`
		} `json:"kernel"`
	}
	if err := json.Unmarshal(b, &side); err != nil {
		return nil, fmt.Errorf("%s sidecar: %w", pcapPath, err)
	}
	if len(side.Kernel.PerLocalPort) == 0 {
		return nil, fmt.Errorf("%s sidecar: no kernel counts", pcapPath)
	}
	lo := capture.Endpoint{IP: netip.MustParseAddr("::ffff:127.0.0.1").As16()}
	counts := make(map[analyze.SocketKey]analyze.SocketCounts, len(side.Kernel.PerLocalPort))
	for port, c := range side.Kernel.PerLocalPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%s sidecar: local port %q: %w", pcapPath, port, err)
		}
		local, remote := lo, lo
		local.Port, remote.Port = uint16(n), 9042
		counts[analyze.SocketKey{Local: local, Remote: remote}] = analyze.SocketCounts{Sends: c.SendCalls, Recvs: c.RecvCalls,
			SendBytes: c.SendBytes, RecvBytes: c.RecvBytes, PID: side.ClientPID, Comm: "client"}
	}
	return counts, nil
}
