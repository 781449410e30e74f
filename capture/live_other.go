//go:build !linux

package capture

import (
	"io"

	"github.com/gopacket/gopacket/layers"
)

// LiveSource is a live capture; it needs Linux (AF_PACKET).
type LiveSource struct{}

// OpenLive returns ErrLiveUnsupported: live capture needs Linux.
func OpenLive(cfg LiveConfig) (*LiveSource, error) { return nil, ErrLiveUnsupported }

// OpenLiveFanout returns ErrLiveUnsupported: live capture needs Linux.
func OpenLiveFanout(cfg LiveConfig, n int) ([]*LiveSource, error) { return nil, ErrLiveUnsupported }

// LinkType is the link type of the frames the source reads.
func (s *LiveSource) LinkType() layers.LinkType { return layers.LinkTypeNull }

// Next returns io.EOF.
func (s *LiveSource) Next(p *Packet) error { return io.EOF }

// Stats returns zero counters.
func (s *LiveSource) Stats() SourceStats { return SourceStats{} }

// Close does nothing.
func (s *LiveSource) Close() error { return nil }
