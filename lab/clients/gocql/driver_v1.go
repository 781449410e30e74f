//go:build !gocqlv2

package main

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"

	"github.com/gocql/gocql"
	"github.com/pierrec/lz4/v4"
)

// The default build: gocql v1.7.0, protocol v3/v4 with per-frame body compression.
const (
	driverName   = "gocql"
	driverModule = "github.com/gocql/gocql"
	driverProtos = "3 and 4"
	defaultProto = 4

	consistencyOne = gocql.One
	unloggedBatch  = gocql.UnloggedBatch
)

var (
	newCluster  = gocql.NewCluster
	errNotFound = gocql.ErrNotFound
)

func setCompressor(cluster *gocql.ClusterConfig, name string) error {
	switch name {
	case "none":
	case "snappy":
		cluster.Compressor = gocql.SnappyCompressor{}
	case "lz4":
		cluster.Compressor = lz4Compressor{}
	default:
		return fmt.Errorf("unknown -compression %q", name)
	}
	return nil
}

// lz4Compressor is gocql v1.7.0's Compressor for Cassandra's lz4 frame compression: the body is a
// 4-byte big-endian uncompressed length followed by one raw lz4 block. github.com/gocql/gocql/lz4 is
// a separate module that the Go module proxy does not serve, so the lab carries this equivalent.
type lz4Compressor struct{}

func (lz4Compressor) Name() string { return "lz4" }

func (lz4Compressor) Encode(data []byte) ([]byte, error) {
	buf := make([]byte, 4+lz4.CompressBlockBound(len(data)))
	binary.BigEndian.PutUint32(buf, uint32(len(data)))
	var c lz4.Compressor
	n, err := c.CompressBlock(data, buf[4:])
	if err != nil {
		return nil, err
	}
	return buf[:4+n], nil
}

func (lz4Compressor) Decode(data []byte) ([]byte, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("lz4 body of %d bytes has no length prefix", len(data))
	}
	size := binary.BigEndian.Uint32(data)
	if size == 0 {
		return nil, nil
	}
	if size > 256<<20 {
		return nil, fmt.Errorf("lz4 uncompressed length %d too large", size)
	}
	buf := make([]byte, size)
	n, err := lz4.UncompressBlock(data[4:], buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// setTLS gives the cluster the lab's tls.Config (nil: plain CQL). gocql's default host dialer wraps each
// dialed connection in tls.Client and, doing so, turns write coalescing off for it (DialedHost.DisableCoalesce).
func setTLS(cluster *gocql.ClusterConfig, c *tls.Config) {
	if c != nil {
		cluster.SslOpts = &gocql.SslOptions{Config: c, EnableHostVerification: !c.InsecureSkipVerify}
	}
}
