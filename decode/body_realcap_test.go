package decode

import (
	"path/filepath"
	"testing"
)

// TestRealCaptureDetails checks the code-specific decoding against every
// capture at hand: real servers send no ERROR tail that stops short, no
// SUPPORTED that ParseScyllaSupported rejects, no custom payload that does
// not walk.
func TestRealCaptureDetails(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, path := range captureFiles(t) {
		var errs, supported, payloads, nodes int
		walkCapture(t, path, func(h *Header, req *Request, resp *Response) {
			if !h.Response {
				if req.CustomPayloadRaw != nil {
					payloads++
					if err := ForEachBytesMap(req.CustomPayloadRaw, nil); err != nil {
						t.Errorf("%s: request custom payload: %v", filepath.Base(path), err)
					}
				}
				return
			}
			switch h.Opcode {
			case OpError:
				errs++
				if resp.Error.Partial {
					t.Errorf("%s: %v %q: partial tail %+v", filepath.Base(path), resp.ErrCode, resp.ErrMessage, resp.Error)
				}
			case OpSupported:
				var s ScyllaInfo
				if err := ParseScyllaSupported(resp.Supported, &s); err != nil {
					t.Errorf("%s: SUPPORTED: %v", filepath.Base(path), err)
				}
				if supported == 0 {
					t.Logf("%s: shards %d/%d, algorithm %q msb %d, ports %d/%d, rate-limit code %d, LWT %#x, tablets %v, metadata id %v, versions %#x beta %#x",
						filepath.Base(path), s.Shard, s.NrShards, s.ShardingAlgorithm, s.ShardingIgnoreMSB, s.ShardAwarePort,
						s.ShardAwarePortSSL, s.RateLimitErrorCode, s.LWTMask, s.TabletsRoutingV1, s.UseMetadataID,
						s.ProtocolVersions, s.BetaVersions)
				}
				supported++
			case OpEvent:
				if len(resp.NodeAddr) != 0 {
					nodes++
				}
			}
			if resp.CustomPayloadRaw != nil {
				payloads++
				err := ForEachBytesMap(resp.CustomPayloadRaw, func(k, v []byte) {
					if string(k) == "tablets-routing-v1" {
						if ok, _, _, _ := TabletsRouting(v); !ok {
							t.Errorf("%s: tablets-routing-v1 % x", filepath.Base(path), v)
						}
					}
				})
				if err != nil {
					t.Errorf("%s: response custom payload: %v", filepath.Base(path), err)
				}
			}
		})
		t.Logf("%s: %d errors, %d SUPPORTED, %d custom payloads, %d node events", filepath.Base(path), errs, supported, payloads, nodes)
	}
}
