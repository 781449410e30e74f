//go:build !linux

package sockcount

// Tracer counts nothing outside Linux: Open always fails with ErrUnsupportedOS.
type Tracer struct{}

// Open returns ErrUnsupportedOS: the counting programs are eBPF.
func Open(Config) (*Tracer, error) { return nil, ErrUnsupportedOS }

// Source returns "".
func (t *Tracer) Source() string { return "" }

// Read does nothing.
func (t *Tracer) Read(map[Key]Counts) error { return ErrUnsupportedOS }

// Close does nothing.
func (t *Tracer) Close() error { return nil }
