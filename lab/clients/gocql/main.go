// Command gocql-client drives a fixed CQL workload through gocql so that the lab can capture how the
// driver puts frames on the wire: N requests with C kept in flight, over a configurable number of
// connections, with gocql's write coalescing on (default 200µs) or off (-coalesce 0).
//
// One source, two drivers: the default build uses github.com/gocql/gocql v1.7.0 (protocol v3/v4); built
// with -tags gocqlv2 it uses github.com/apache/cassandra-gocql-driver/v2 (protocol v5 segments too).
// driver_v1.go and driver_v2.go hold the only differences.
//
// The workload per request index i: 50% prepared INSERT, 30% prepared SELECT, 20% plain QUERY
// (statements gocql would not prepare), and one UNLOGGED BATCH of 5 prepared inserts at i == N/2.
// It prints one JSON line with what it did and the local ports of its connections.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gocql-client:", err)
		os.Exit(1)
	}
}

type summary struct {
	Driver        string   `json:"driver"`
	DriverVersion string   `json:"driver_version"`
	Protocol      int      `json:"protocol"`
	Mode          string   `json:"mode"`
	CoalesceWait  string   `json:"coalesce_wait"`
	Compression   string   `json:"compression"`
	Connections   int      `json:"connections"`
	Requests      int64    `json:"requests"`
	Errors        int64    `json:"errors"`
	FirstError    string   `json:"first_error,omitempty"`
	Concurrency   int      `json:"concurrency"`
	DurationS     float64  `json:"duration_s"`
	OpsPerS       float64  `json:"ops_per_s"`
	TLS           string   `json:"tls,omitempty"`
	LocalPorts    []int    `json:"local_ports"`
	Statements    []string `json:"statements"`
}

func run(args []string) error {
	fs := flag.NewFlagSet("gocql-client", flag.ContinueOnError)
	host := fs.String("host", "127.0.0.1", "Cassandra contact point")
	port := fs.Int("port", 9042, "CQL native port")
	proto := fs.Int("proto", defaultProto, "CQL protocol version ("+driverName+" speaks "+driverProtos+")")
	coalesce := fs.Duration("coalesce", 200*time.Microsecond, "gocql WriteCoalesceWaitTime; 0 writes each frame with its own syscall")
	compression := fs.String("compression", "none", "frame compression: none, lz4 or snappy")
	conns := fs.Int("conns", 1, "gocql NumConns (connections per host)")
	concurrency := fs.Int("c", 64, "requests kept in flight")
	n := fs.Int("n", 4000, "requests to issue")
	keyspace := fs.String("keyspace", "cqlsniff_lab", "keyspace to create and use")
	var tlsOpt tlsOptions
	fs.BoolVar(&tlsOpt.on, "tls", false, "connect with TLS (the lab Cassandra takes TLS and plain CQL on 9042)")
	fs.StringVar(&tlsOpt.ca, "tls-ca", "", "PEM certificate to trust (lab/.cache/tls/ca.pem); empty: skip verification")
	fs.StringVar(&tlsOpt.keylog, "keylog", "", "write the TLS secrets to this file in NSS key log format (tls.Config.KeyLogWriter)")
	fs.StringVar(&tlsOpt.max, "tls-max", "", "highest TLS version: 1.2 or 1.3 (default 1.3)")
	fs.StringVar(&tlsOpt.ciphers, "tls-ciphers", "", "TLS 1.2 suite to offer: chacha, aes128 or aes256 (ECDHE-RSA); TLS 1.3 suites are Go's choice")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *concurrency < 1 || *n < 1 {
		return errors.New("-c and -n must be positive")
	}

	if tlsOpt.keylog != "" || tlsOpt.max != "" || tlsOpt.ciphers != "" || tlsOpt.ca != "" {
		tlsOpt.on = true
	}
	tlsConf, keylog, err := tlsOpt.config()
	if err != nil {
		return err
	}
	if keylog != nil {
		defer keylog.Close()
	}

	if err := setupSchema(*host, *port, *proto, *keyspace, tlsConf); err != nil {
		return fmt.Errorf("schema: %w", err)
	}

	dialer := &recordingDialer{}
	cluster := newCluster(*host)
	cluster.Port = *port
	cluster.ProtoVersion = *proto
	cluster.Keyspace = *keyspace
	cluster.NumConns = *conns
	cluster.WriteCoalesceWaitTime = *coalesce
	cluster.Timeout = 10 * time.Second
	cluster.Consistency = consistencyOne
	cluster.Dialer = dialer
	// Keep the capture to one host and the workload: no token-aware refreshes of a ring that has one node.
	cluster.DisableInitialHostLookup = true
	if err := setCompressor(cluster, *compression); err != nil {
		return err
	}
	setTLS(cluster, tlsConf)

	session, err := cluster.CreateSession()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}

	ins := "INSERT INTO kv (k, c, v) VALUES (?, ?, ?)"
	sel := "SELECT v FROM kv WHERE k = ? AND c = ?"
	// gocql prepares every statement whose first word is SELECT/INSERT/UPDATE/DELETE/BATCH; a leading
	// comment makes it send a plain QUERY, the way an application's DDL or ad-hoc statements go out.
	plain := "/* plain */ SELECT k, c, v FROM kv WHERE k = %d AND c = %d"

	var (
		next     atomic.Int64
		done     atomic.Int64
		failures atomic.Int64
		errOnce  sync.Once
		firstErr string
		wg       sync.WaitGroup
	)
	batchAt := int64(*n / 2)
	start := time.Now()
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v string
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				k, c := int(i%97), int(i)
				var err error
				switch {
				case i == batchAt:
					b := session.NewBatch(unloggedBatch)
					for j := 0; j < 5; j++ {
						b.Query(ins, k, c*10+j, "batch")
					}
					err = session.ExecuteBatch(b)
				case i%10 < 5:
					err = session.Query(ins, k, c, "value").Exec()
				case i%10 < 8:
					err = session.Query(sel, k, c).Scan(&v)
					if errors.Is(err, errNotFound) {
						err = nil
					}
				default:
					iter := session.Query(fmt.Sprintf(plain, k, c)).Iter()
					for iter.Scan(nil, nil, nil) {
					}
					err = iter.Close()
				}
				done.Add(1)
				if err != nil {
					failures.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// Marks the end of the measured phase for lab/run.py (its CPU sampling), before the shutdown.
	fmt.Println(`{"event":"phase_end"}`)
	session.Close()

	mode := "coalesced"
	if *coalesce <= 0 {
		mode = "unbuffered"
	}
	s := summary{
		Driver:        driverName,
		DriverVersion: moduleVersion(driverModule),
		Protocol:      *proto,
		Mode:          mode,
		CoalesceWait:  coalesce.String(),
		Compression:   *compression,
		Connections:   *conns,
		Requests:      done.Load(),
		Errors:        failures.Load(),
		FirstError:    firstErr,
		Concurrency:   *concurrency,
		DurationS:     elapsed.Seconds(),
		OpsPerS:       float64(done.Load()) / elapsed.Seconds(),
		TLS:           tlsOpt.describe(),
		LocalPorts:    dialer.ports(),
		Statements:    []string{ins, sel, strings.ReplaceAll(plain, "%d", "N"), "BEGIN UNLOGGED BATCH x5 INSERT"},
	}
	out, err := json.Marshal(s)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	if s.Errors > 0 {
		return fmt.Errorf("%d of %d requests failed, first: %s", s.Errors, s.Requests, firstErr)
	}
	return nil
}

// setupSchema creates the keyspace and table with a short-lived session of its own, so that the
// measured session carries only the workload (and its own connection setup).
func setupSchema(host string, port, proto int, keyspace string, tlsConf *tls.Config) error {
	cluster := newCluster(host)
	setTLS(cluster, tlsConf)
	cluster.Port = port
	cluster.ProtoVersion = proto
	cluster.Timeout = 30 * time.Second
	cluster.DisableInitialHostLookup = true
	session, err := cluster.CreateSession()
	if err != nil {
		return err
	}
	defer session.Close()
	stmts := []string{
		fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}", keyspace),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.kv (k int, c int, v text, PRIMARY KEY (k, c))", keyspace),
	}
	for _, stmt := range stmts {
		if err := session.Query(stmt).Exec(); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// recordingDialer remembers the local port of every connection gocql opens (control and pool).
type recordingDialer struct {
	d  net.Dialer
	mu sync.Mutex
	p  []int
}

func (r *recordingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := r.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		r.mu.Lock()
		r.p = append(r.p, ta.Port)
		r.mu.Unlock()
	}
	return c, nil
}

func (r *recordingDialer) ports() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := append([]int(nil), r.p...)
	sort.Ints(p)
	return p
}

func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				return strings.TrimPrefix(m.Version, "v")
			}
		}
	}
	return "unknown"
}
