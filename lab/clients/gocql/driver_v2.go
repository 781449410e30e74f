//go:build gocqlv2

package main

import (
	"crypto/tls"
	"fmt"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/apache/cassandra-gocql-driver/v2/lz4"
	"github.com/apache/cassandra-gocql-driver/v2/snappy"
)

// Built with -tags gocqlv2: the Apache Cassandra GoCQL driver v2, which speaks protocol v5. With v5 it
// puts each frame in its own self-contained segment (lz4-compressed segments with -compression lz4)
// and its write coalescer gathers segments, not frames, into one writev.
const (
	driverName   = "cassandra-gocql-driver"
	driverModule = "github.com/apache/cassandra-gocql-driver/v2"
	driverProtos = "3, 4 and 5"
	defaultProto = 5

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
		cluster.Compressor = snappy.SnappyCompressor{}
	case "lz4":
		cluster.Compressor = lz4.LZ4Compressor{}
	default:
		return fmt.Errorf("unknown -compression %q", name)
	}
	return nil
}

// setTLS gives the cluster the lab's tls.Config (nil: plain CQL). gocql's default host dialer wraps each
// dialed connection in tls.Client and, doing so, turns write coalescing off for it (DialedHost.DisableCoalesce).
func setTLS(cluster *gocql.ClusterConfig, c *tls.Config) {
	if c != nil {
		cluster.SslOpts = &gocql.SslOptions{Config: c, EnableHostVerification: !c.InsecureSkipVerify}
	}
}
