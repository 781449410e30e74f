// Package decode turns bytes into CQL native protocol envelopes and messages:
// envelope headers, v5 segments, v1–v4 body decompression and message bodies.
// It knows nothing of packets, connections or statistics. Its decoders are
// pure functions over byte slices that fill caller-owned results whose slices
// alias the input, so the input must outlive what was decoded from it.
package decode
