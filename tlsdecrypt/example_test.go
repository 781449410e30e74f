package tlsdecrypt_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/cqlsniff/cqlsniff/tlsdecrypt"
)

// segment is one TCP segment of a capture, in order.
type segment struct {
	dir tlsdecrypt.Dir
	b   []byte
	ts  int64
}

// readCapture reads the segments of a TLS connection from a transcript in
// testdata ("c <hex>" for a write by the client, "s <hex>" by the server),
// cut as TCP would at 1448 bytes. In cqlsniff they come from reassembly.
func readCapture(path string) ([]segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var segs []segment
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dir, data, _ := strings.Cut(sc.Text(), " ")
		if dir != "c" && dir != "s" {
			continue
		}
		b, err := hex.DecodeString(data)
		if err != nil {
			return nil, err
		}
		d := tlsdecrypt.FromClient
		if dir == "s" {
			d = tlsdecrypt.FromServer
		}
		for len(b) > 0 {
			n := min(len(b), 1448)
			segs = append(segs, segment{d, b[:n], int64(len(segs)) * 1000})
			b = b[n:]
		}
	}
	return segs, sc.Err()
}

// A CQL connection over TLS 1.3, decrypted with the client's key log: the
// driver's OPTIONS, STARTUP and QUERY, the server's answers.
func Example() {
	keys, err := tlsdecrypt.Load("testdata/gotls-tls13-aes128.keylog")
	if err != nil {
		fmt.Println(err)
		return
	}
	segs, err := readCapture("testdata/gotls-tls13-aes128.transcript")
	if err != nil {
		fmt.Println(err)
		return
	}
	// The analyzer hands each plaintext record to its CQL decoder as if it
	// were the payload of a TCP segment.
	c := tlsdecrypt.NewConn(keys, func(info tlsdecrypt.RecordInfo, plain []byte) {
		fmt.Printf("%v: %d bytes in a record of %d, %d segment(s)\n", info.Dir, len(plain), info.WireLen, info.Segments)
	})
	for _, s := range segs {
		c.Feed(s.dir, s.b, s.ts)
	}
	st := c.Stats()
	fmt.Println(st.Reason(), tlsdecrypt.VersionName(st.Version), tlsdecrypt.SuiteName(st.Suite))
	// Output:
	// client→server: 9 bytes in a record of 31, 1 segment(s)
	// server→client: 60 bytes in a record of 82, 1 segment(s)
	// client→server: 30 bytes in a record of 52, 1 segment(s)
	// server→client: 9 bytes in a record of 31, 1 segment(s)
	// client→server: 120 bytes in a record of 142, 1 segment(s)
	// server→client: 2000 bytes in a record of 2022, 2 segment(s)
	// decrypting TLS 1.3 TLS_AES_128_GCM_SHA256
}
