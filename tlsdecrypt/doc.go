// Package tlsdecrypt turns captured TLS records back into plaintext, given
// the secrets an application wrote to an NSS key log (SSLKEYLOGFILE), so
// that encrypted CQL connections (Cassandra's client_encryption_options,
// usually port 9142) can be analysed like plain ones.
//
// It is passive and knows nothing of packets or CQL: it takes each
// direction's reassembled byte stream, follows the handshake only as far as
// it must (client and server random, version, cipher suite, key changes),
// and hands back the application_data plaintext with facts about each
// record. It never negotiates, verifies certificates or sends anything.
//
// # Use
//
// One [KeyLog] serves all connections: [Load] it at start; in a live
// capture call [KeyLog.Refresh] now and then (say every second), since the
// application appends secrets as it makes connections. It is safe for
// concurrent use.
//
// One [Conn] per TCP connection that carries TLS, made with [NewConn] when
// the connection is first seen. Feed it every in-order segment of either
// direction with [Conn.Feed], saying [FromClient] or [FromServer] (from the
// server port or the SYN; a ClientHello from the other side overrides it),
// and report lost bytes with [Conn.Gap]. The emit function given to NewConn
// receives each application_data record's plaintext, in order per
// direction, valid only during the call: give it to the CQL decoder as if
// it were a TCP segment's payload. [RecordInfo] says where the record lay
// in the segments (so one can count records per segment and bytes per
// record) and whether plaintext was lost before it. A Conn is not safe
// for concurrent use; feed it from the goroutine that owns the flow.
//
// [Conn.Stats] tells how far decryption got ([Status], [Stats.Reason]):
// decrypting; no keys in the key log (yet: records wait, up to 64 KiB per
// direction, and are decrypted when a Refresh brings their keys; past that
// the rest is skipped and decryption resumes after the hole where the
// sequence number can be known); handshake not captured (a capture that
// starts mid-connection can never be decrypted: the client random is in
// the ClientHello); unsupported (a version or suite named in Reason); a
// direction failed (a record did not authenticate: wrong keys or damaged
// bytes; nothing after it is delivered, so no garbage reaches the
// decoder); bytes lost in the capture.
//
// # Coverage
//
// TLS 1.3 with TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and
// TLS_CHACHA20_POLY1305_SHA256, HelloRetryRequest, KeyUpdate, session
// tickets and PSK resumption. TLS 1.2 with the AES-GCM and
// ChaCha20-Poly1305 suites, whatever the key exchange (ECDHE, DHE, RSA: the
// key log holds the master secret), and session resumption by ID or ticket
// when the resumed session's full handshake was seen by the same KeyLog.
// Not decrypted: SSL 3.0 to TLS 1.1, CBC and CCM suites, TLS 1.2
// renegotiation, TLS 1.3 0-RTT early data (skipped, counted).
package tlsdecrypt
