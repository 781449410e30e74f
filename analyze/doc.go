// Package analyze turns reassembled TCP flows into CQL exchanges and the
// figures about them: it pairs requests with responses by connection and
// stream id, names statements, keeps latency histograms, batching and
// timing evidence per connection and direction, and makes the diagnoses
// and the Report that the text report, the terminal UI and the metrics
// read.
//
// Its boundary: it gets packets from capture (a Source, through Pipeline)
// and bytes to decode from decode, and knows nothing of terminals or
// Prometheus. A Pipeline shares the connections among workers by a hash of
// their flow (offline one reader deals the packets; live each worker reads
// its own ring of a fanout group); reports are joined from the workers'
// parts, and published to readers on other goroutines as Snapshots.
package analyze
