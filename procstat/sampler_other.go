//go:build !linux

package procstat

import (
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// Sampler reads nothing outside Linux: there is no /proc to read (and no
// kernel socket counts naming the processes).
type Sampler struct{}

// NewSampler returns a Sampler that measures nothing.
func NewSampler() *Sampler { return &Sampler{} }

// Sample returns dst unchanged.
func (s *Sampler) Sample(dst []analyze.ProcessCPU, pids []uint32, now time.Time) []analyze.ProcessCPU {
	return dst
}

// Err returns nil.
func (s *Sampler) Err() error { return nil }
