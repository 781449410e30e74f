#!/usr/bin/env python3
"""Ground-truth counts for a lab capture, independent of cqlsniff.

Reads a libpcap file (gzipped or not) of CQL traffic (Ethernet/loopback, IPv4, TCP), reassembles each
direction of each connection in sequence order, walks the CQL envelopes (v3/v4 frames; v5 segments with
the frames inside them; lz4-compressed v5 segments only if the lz4 module is importable) and reports per
connection and in total:

  - TCP data segments per direction,
  - CQL frames per direction and request opcodes,
  - for client->server: how many frames start in each data segment (the batching the analyzer measures),
  - segments captured out of order (held by sequence number until the gap before them filled: tcpdump on
    a 2-CPU loopback records some segments late), duplicates (retransmitted bytes already delivered,
    dropped) and gaps never filled (bytes missing from the capture: frames are not walked past one).

TLS (issue 11): a direction whose first captured bytes are a TLS record header (content type 20-24,
version 3.1-3.4) is walked as TLS records instead: records per content type, records starting in each
data segment (most TLS stacks turn one write into one record, so records are the writes when the CQL
frames cannot be seen), bytes per record, and from the cleartext ServerHello the negotiated version
(supported_versions extension for TLS 1.3) and cipher suite. A capture that starts after the handshake
still has its records walked (when its first captured segment starts on a record, as they do: one write,
one record), without version or suite. CQL frames inside TLS are not counted here (no keys): run.py
counts them with tshark and the key log.

Usage: pcapstats.py FILE.pcap[.gz] [--port 9042]   -> JSON on stdout. Standard library, plus lz4
if present.
"""
import argparse
import bisect
import collections
import gzip
import json
import struct
import sys

try:  # optional: lets the walker open lz4-compressed v5 segments (the lab venv has it)
    import lz4.block as lz4_block
except ImportError:
    lz4_block = None

# Out-of-order bytes held per direction before a gap is declared lost (the capture dropped them).
MAX_HELD_BYTES = 64 << 20

TLS_CONTENT = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data", 24: "heartbeat"}
TLS_VERSIONS = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
# IANA names of the suites the lab can negotiate (others are shown in hex).
TLS_SUITES = {
    0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384", 0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
}
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")


def looks_like_tls(b):
    return len(b) >= 5 and 20 <= b[0] <= 24 and b[1] == 3 and 1 <= b[2] <= 4 and struct.unpack(">H", b[3:5])[0] <= 18432


def parse_server_hello(body):
    """(version, suite) from a ServerHello handshake message body, or None (HelloRetryRequest, short)."""
    try:
        legacy = struct.unpack(">H", body[0:2])[0]
        if body[2:34] == HRR_RANDOM:
            return None
        pos = 34
        pos += 1 + body[pos]
        suite = struct.unpack(">H", body[pos:pos + 2])[0]
        pos += 3
        version = legacy
        if pos + 2 <= len(body):
            end = pos + 2 + struct.unpack(">H", body[pos:pos + 2])[0]
            pos += 2
            while pos + 4 <= end:
                et, el = struct.unpack(">HH", body[pos:pos + 4])
                if et == 43 and el == 2:  # supported_versions: the version actually chosen
                    version = struct.unpack(">H", body[pos + 4:pos + 6])[0]
                pos += 4 + el
        return version, suite
    except (struct.error, IndexError):
        return None


OPCODES = {
    0x00: "ERROR", 0x01: "STARTUP", 0x02: "READY", 0x03: "AUTHENTICATE", 0x05: "OPTIONS",
    0x06: "SUPPORTED", 0x07: "QUERY", 0x08: "RESULT", 0x09: "PREPARE", 0x0A: "EXECUTE",
    0x0B: "REGISTER", 0x0C: "EVENT", 0x0D: "BATCH", 0x0E: "AUTH_CHALLENGE",
    0x0F: "AUTH_RESPONSE", 0x10: "AUTH_SUCCESS",
}


def read_pcap(path):
    """Yield (ts, frame bytes) for each packet of a classic pcap file; return the linktype first."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
        gh = f.read(24)
        magic = gh[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            endian = ">"
        else:
            raise SystemExit(f"{path}: not a classic pcap file (pcapng is not supported here)")
        nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        linktype = struct.unpack(endian + "I", gh[20:24])[0]
        yield linktype
        while True:
            ph = f.read(16)
            if len(ph) < 16:
                return
            sec, frac, incl, _orig = struct.unpack(endian + "IIII", ph)
            data = f.read(incl)
            yield sec + frac / (1e9 if nano else 1e6), data


def tcp_segments(path):
    """Yield (ts, src, sport, dst, dport, seq, flags, payload) for IPv4 TCP packets."""
    it = read_pcap(path)
    linktype = next(it)
    for ts, data in it:
        if linktype == 1:  # Ethernet (tcpdump -i lo writes this)
            if len(data) < 14 or data[12:14] != b"\x08\x00":
                continue
            ip = data[14:]
        elif linktype == 113:  # Linux cooked
            if len(data) < 16 or data[14:16] != b"\x08\x00":
                continue
            ip = data[16:]
        elif linktype in (101, 228):  # raw IPv4
            ip = data
        else:
            raise SystemExit(f"unsupported linktype {linktype}")
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        off = (tcp[12] >> 4) * 4
        flags = tcp[13]
        src = ".".join(map(str, ip[12:16]))
        dst = ".".join(map(str, ip[16:20]))
        yield ts, src, sport, dst, dport, seq, flags, tcp[off:]


class Direction:
    """One direction of a connection: in-order byte stream, segment offsets, CQL envelope walker."""

    def __init__(self):
        self.next_seq = None
        self.gap = False
        self.held = {}  # seq -> payload of segments ahead of next_seq
        self.held_bytes = 0
        self.out_of_order = 0  # segments that arrived ahead of a gap (delivered once it filled)
        self.duplicates = 0  # segments whose bytes had all been delivered already
        self.lost_gaps = 0  # gaps never filled (bytes missing from the capture)
        self.segments = 0
        self.seg_starts = []  # stream offset of each data segment's first byte
        self.stream_len = 0
        self.buf = bytearray()
        self.buf_off = 0  # stream offset of buf[0]
        self.mode = "legacy"  # legacy frames, then v5 "segments" after STARTUP/READY
        self.compressed_v5 = False
        self.pending_switch = False
        self.inner = bytearray()  # v5: frame bytes carried by segment payloads
        self.inner_map = []  # (inner offset, stream offset, decompressed?) of each payload chunk
        self.inner_base = 0  # inner offset of inner[0]
        self.frames = 0
        self.frame_starts = []  # stream offsets where frames begin
        self.opcodes = collections.Counter()
        self.v5_segments = 0
        self.v5_unparsed = 0
        self.versions = collections.Counter()
        self.startup_compression = None
        self.tls = False  # TLS records instead of CQL frames
        self.tls_records = collections.Counter()  # by content type name
        self.tls_record_starts = []  # stream offsets where records begin
        self.tls_app_starts = []  # ... application_data records only
        self.tls_app_bytes = 0  # application_data record payload bytes (ciphertext + tag)
        self.tls_cleartext_done = False  # after change_cipher_spec / the ServerHello of TLS 1.3
        self.tls_server_hello = None  # (version, suite)
        self.tls_hs = bytearray()  # cleartext handshake bytes (messages may span records)

    def feed(self, seq, flags, payload):
        """Take one TCP segment in capture order. Bytes ahead of the stream are held by sequence number
        until the gap before them fills (tcpdump on a 2-CPU loopback records some segments out of
        order); bytes already delivered are dropped (retransmissions, duplicates)."""
        if flags & 0x02:  # SYN
            self.next_seq = (seq + 1) & 0xFFFFFFFF
            return
        if not payload:
            return
        if self.next_seq is None:
            self.next_seq = seq
            self.gap = True  # did not see the handshake: start mid-stream
        delta = (seq - self.next_seq) & 0xFFFFFFFF
        if 0 < delta < 0x80000000:  # ahead of the stream: hold until the gap fills
            self.out_of_order += 1
            prev = self.held.get(seq)
            if prev is None or len(payload) > len(prev):
                self.held_bytes += len(payload) - (len(prev) if prev else 0)
                self.held[seq] = payload
            while self.held_bytes > MAX_HELD_BYTES:
                self.skip_gap()  # the missing bytes are not coming: real loss
            return
        self.deliver(seq, payload)
        self.drain()

    def deliver(self, seq, payload):
        """Append a segment that starts at or before next_seq, minus the bytes already delivered."""
        overlap = (self.next_seq - seq) & 0xFFFFFFFF
        if overlap:
            if overlap >= len(payload):
                self.duplicates += 1
                return
            payload = payload[overlap:]
        self.segments += 1
        self.seg_starts.append(self.stream_len)
        self.stream_len += len(payload)
        self.next_seq = (self.next_seq + len(payload)) & 0xFFFFFFFF
        if self.mode != "lost":
            self.buf += payload
            self.walk()

    def drain(self):
        """Deliver held segments that the stream has reached."""
        while self.held:
            ready = [s for s in self.held if (s - self.next_seq) & 0xFFFFFFFF == 0
                     or (s - self.next_seq) & 0xFFFFFFFF >= 0x80000000]
            if not ready:
                return
            for s in ready:
                payload = self.held.pop(s)
                self.held_bytes -= len(payload)
                self.deliver(s, payload)

    def skip_gap(self):
        """Give up on the bytes before the earliest held segment: lost, so frames cannot be walked on."""
        first = min(self.held, key=lambda s: (s - self.next_seq) & 0xFFFFFFFF)
        self.lost_gaps += 1
        self.gap = True
        self.next_seq = first
        self.buf.clear()
        self.mode = "lost"
        self.drain()

    def finish(self):
        """End of capture: whatever is still held sits after bytes that were never captured."""
        while self.held:
            self.skip_gap()

    def consume(self, n):
        del self.buf[:n]
        self.buf_off += n

    def walk(self):
        if self.buf_off == 0 and self.mode == "legacy" and not self.tls and len(self.buf) >= 5 and looks_like_tls(self.buf):
            self.tls = True
            self.mode = "tls"
        while True:
            if self.mode == "tls":
                if len(self.buf) < 5:
                    return
                if not looks_like_tls(self.buf):
                    self.mode = "lost"
                    return
                ctype = self.buf[0]
                length = struct.unpack(">H", self.buf[3:5])[0]
                if len(self.buf) < 5 + length:
                    return
                self.record_tls(self.buf_off, ctype, bytes(self.buf[5:5 + length]))
                self.consume(5 + length)
                continue
            if self.mode == "legacy":
                if len(self.buf) < 9:
                    return
                version = self.buf[0] & 0x7F
                # 0x41/0x42: DSE_V1/DSE_V2, which the Node.js driver tries first and Cassandra refuses.
                if not (3 <= version <= 6 or version in (0x41, 0x42)):
                    self.mode = "lost"
                    return
                length = struct.unpack(">I", self.buf[5:9])[0]
                if len(self.buf) < 9 + length:
                    return
                opcode = self.buf[4]
                self.record(self.buf_off, version, opcode, bytes(self.buf[9:9 + length]))
                self.consume(9 + length)
                if version == 5 and opcode in (0x01, 0x02):
                    # v5: the STARTUP request and its READY reply are the last legacy frames.
                    self.mode = "segments"
            elif self.mode == "segments":
                hlen = 8 if self.compressed_v5 else 6
                if len(self.buf) < hlen:
                    return
                h = int.from_bytes(self.buf[:5 if self.compressed_v5 else 3], "little")
                plen = h & 0x1FFFF
                # Frames may span segments (self-contained flag clear); walk_inner joins payloads.
                ulen = (h >> 17) & 0x1FFFF if self.compressed_v5 else 0
                total = hlen + plen + 4
                if len(self.buf) < total:
                    return
                self.v5_segments += 1
                payload = bytes(self.buf[hlen:hlen + plen])
                if self.compressed_v5 and ulen != 0:
                    if lz4_block is None:
                        self.v5_unparsed += 1  # cannot open it: its frames are not counted
                        payload = None
                    else:
                        payload = lz4_block.decompress(payload, uncompressed_size=ulen)
                if payload is not None:
                    # Map inner offsets back to TCP stream offsets; a decompressed payload has no
                    # byte-for-byte mapping, so its frames are credited to the payload's first byte.
                    self.inner_map.append((self.inner_base + len(self.inner), self.buf_off + hlen,
                                           self.compressed_v5 and ulen != 0))
                    self.inner += payload
                    self.walk_inner()
                self.consume(total)
            else:
                return

    def walk_inner(self):
        while len(self.inner) >= 9:
            length = struct.unpack(">I", self.inner[5:9])[0]
            if len(self.inner) < 9 + length:
                return
            keys = [m[0] for m in self.inner_map]
            i = bisect.bisect_right(keys, self.inner_base) - 1
            chunk_inner, chunk_stream, decompressed = self.inner_map[i]
            start = chunk_stream if decompressed else chunk_stream + (self.inner_base - chunk_inner)
            self.record(start, self.inner[0] & 0x7F, self.inner[4], None)
            del self.inner[:9 + length]
            self.inner_base += 9 + length
            self.inner_map = [m for m in self.inner_map[i:]]

    def record_tls(self, offset, ctype, body):
        self.tls_records[TLS_CONTENT.get(ctype, str(ctype))] += 1
        self.tls_record_starts.append(offset)
        if ctype == 23:
            self.tls_app_starts.append(offset)
            self.tls_app_bytes += len(body)
        elif ctype == 20:
            self.tls_cleartext_done = True
        elif ctype == 22 and not self.tls_cleartext_done:
            self.tls_hs += body
            while len(self.tls_hs) >= 4:
                mlen = int.from_bytes(self.tls_hs[1:4], "big")
                if len(self.tls_hs) < 4 + mlen:
                    break
                mtype, msg = self.tls_hs[0], bytes(self.tls_hs[4:4 + mlen])
                del self.tls_hs[:4 + mlen]
                if mtype == 2:
                    sh = parse_server_hello(msg)
                    if sh:
                        self.tls_server_hello = sh
                        if sh[0] == 0x0304:
                            self.tls_cleartext_done = True  # the rest of the handshake is encrypted

    def record(self, offset, version, opcode, body):
        self.frames += 1
        self.frame_starts.append(offset)
        self.opcodes[OPCODES.get(opcode, hex(opcode))] += 1
        self.versions[version] += 1
        if opcode == 0x01 and body is not None:
            opts = parse_string_map(body)
            self.startup_compression = opts.get("COMPRESSION")

    def frames_per_segment(self, starts=None):
        counts = [0] * len(self.seg_starts)
        for off in (self.frame_starts if starts is None else starts):
            i = bisect.bisect_right(self.seg_starts, off) - 1
            if i >= 0:
                counts[i] += 1
        return counts


def parse_string_map(body):
    try:
        (n,) = struct.unpack(">H", body[:2])
        pos, out = 2, {}
        for _ in range(n):
            kl = struct.unpack(">H", body[pos:pos + 2])[0]
            k = body[pos + 2:pos + 2 + kl].decode()
            pos += 2 + kl
            vl = struct.unpack(">H", body[pos:pos + 2])[0]
            v = body[pos + 2:pos + 2 + vl].decode()
            pos += 2 + vl
            out[k.upper()] = v
        return out
    except (struct.error, UnicodeDecodeError):
        return {}


def analyze(path, port):
    conns = {}
    first_ts = last_ts = None
    for ts, src, sport, dst, dport, seq, flags, payload in tcp_segments(path):
        if dport == port:
            key, side = (src, sport), "c2s"
        elif sport == port:
            key, side = (dst, dport), "s2c"
        else:
            continue
        first_ts = ts if first_ts is None else first_ts
        last_ts = ts
        c = conns.setdefault(key, {"c2s": Direction(), "s2c": Direction()})
        d = c[side]
        # v5 compression is decided by the STARTUP the client sent; both directions use it.
        if c["c2s"].startup_compression and c["c2s"].startup_compression.lower() == "lz4":
            c["c2s"].compressed_v5 = c["s2c"].compressed_v5 = True
        d.feed(seq, flags, payload)

    for c in conns.values():
        c["c2s"].finish()
        c["s2c"].finish()

    out_conns = []
    hist = collections.Counter()
    totals = collections.Counter()
    opcodes = collections.Counter()
    for (ip, cport), c in sorted(conns.items(), key=lambda kv: kv[0][1]):
        up, down = c["c2s"], c["s2c"]
        fps = up.frames_per_segment()
        hist.update(fps)
        opcodes.update(up.opcodes)
        totals["client_data_segments"] += up.segments
        totals["server_data_segments"] += down.segments
        totals["client_frames"] += up.frames
        totals["server_frames"] += down.frames
        totals["client_bytes"] += up.stream_len
        totals["server_bytes"] += down.stream_len
        totals["client_v5_segments"] += up.v5_segments
        totals["client_v5_segments_not_opened"] += up.v5_unparsed
        totals["out_of_order_segments"] += up.out_of_order + down.out_of_order
        totals["duplicate_segments"] += up.duplicates + down.duplicates
        totals["lost_gaps"] += up.lost_gaps + down.lost_gaps
        out_conns.append({
            "client": f"{ip}:{cport}",
            "versions": sorted(up.versions),
            "compression": up.startup_compression,
            "client_data_segments": up.segments,
            "client_frames": up.frames,
            "client_bytes": up.stream_len,
            "client_v5_segments": up.v5_segments,
            "client_opcodes": dict(up.opcodes),
            "server_data_segments": down.segments,
            "server_frames": down.frames,
            "max_frames_in_one_segment": max(fps) if fps else 0,
            "mid_stream_start_or_gap": up.gap or down.gap,
            "out_of_order_segments": up.out_of_order + down.out_of_order,
            "duplicate_segments": up.duplicates + down.duplicates,
            "lost_gaps": up.lost_gaps + down.lost_gaps,
        })
    segs = totals["client_data_segments"]
    tls = tls_summary(conns)
    return {
        "file": path,
        "connections": len(out_conns),
        "duration_s": round((last_ts - first_ts), 6) if first_ts is not None else 0,
        **totals,
        "client_frames_per_data_segment": round(totals["client_frames"] / segs, 3) if segs else 0,
        "client_frames_per_segment_histogram": {str(k): v for k, v in sorted(hist.items())},
        "client_opcodes": dict(opcodes),
        **({"tls": tls} if tls else {}),
        "per_connection": out_conns,
    }


def tls_summary(conns):
    """Record-layer figures of the TLS connections (None when there are none)."""
    tconns = [(k, c) for k, c in sorted(conns.items(), key=lambda kv: kv[0][1]) if c["c2s"].tls or c["s2c"].tls]
    if not tconns:
        return None
    per, negotiated = [], collections.Counter()
    t = collections.Counter()
    hist_all, hist_app = collections.Counter(), collections.Counter()
    for (ip, cport), c in tconns:
        up, down = c["c2s"], c["s2c"]
        sh = down.tls_server_hello
        name = None
        if sh:
            name = f"{TLS_VERSIONS.get(sh[0], hex(sh[0]))} {TLS_SUITES.get(sh[1], hex(sh[1]))}"
            negotiated[name] += 1
        else:
            negotiated["no ServerHello captured"] += 1
        # Records starting per client data segment; application_data records only in the second.
        rps = up.frames_per_segment(up.tls_record_starts)
        aps = [n for n in up.frames_per_segment(up.tls_app_starts)]
        hist_all.update(rps)
        hist_app.update(n for n in aps if n)
        for side, d in (("client", up), ("server", down)):
            t[f"{side}_records"] += sum(d.tls_records.values())
            t[f"{side}_app_records"] += d.tls_records["application_data"]
            t[f"{side}_app_record_bytes"] += d.tls_app_bytes
            t[f"{side}_data_segments"] += d.segments
        t["client_segments_with_app_records"] += sum(1 for n in aps if n)
        per.append({
            "client": f"{ip}:{cport}",
            "negotiated": name,
            "handshake_captured": sh is not None,
            "client_records": dict(up.tls_records),
            "server_records": dict(down.tls_records),
            "client_data_segments": up.segments,
            "server_data_segments": down.segments,
            "client_app_records_per_data_segment": round(up.tls_records["application_data"] / up.segments, 3) if up.segments else 0,
            "walk_stopped": up.mode == "lost" or down.mode == "lost",
        })
    out = {
        "connections": len(tconns),
        "negotiated": dict(negotiated),
        **t,
        "client_records_per_data_segment": round(t["client_records"] / t["client_data_segments"], 3) if t["client_data_segments"] else 0,
        "client_app_records_per_segment_with_app_data": round(t["client_app_records"] / t["client_segments_with_app_records"], 3)
        if t["client_segments_with_app_records"] else 0,
        "server_records_per_data_segment": round(t["server_records"] / t["server_data_segments"], 3) if t["server_data_segments"] else 0,
        "client_bytes_per_app_record": round(t["client_app_record_bytes"] / t["client_app_records"], 1) if t["client_app_records"] else 0,
        "server_bytes_per_app_record": round(t["server_app_record_bytes"] / t["server_app_records"], 1) if t["server_app_records"] else 0,
        "client_records_per_segment_histogram": {str(k): v for k, v in sorted(hist_all.items())},
        "client_app_records_per_segment_histogram": {str(k): v for k, v in sorted(hist_app.items())},
        "per_connection": per,
        "source": "pcapstats.py TLS record walk of the reassembled streams (record headers only, no keys); "
                  "version and suite from the cleartext ServerHello (supported_versions for TLS 1.3)",
    }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pcap")
    ap.add_argument("--port", type=int, default=9042)
    args = ap.parse_args()
    json.dump(analyze(args.pcap, args.port), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
