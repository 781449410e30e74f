// Package tlsdecrypt turns captured TLS records back into plaintext, given
// the secrets an application wrote to an NSS key log (SSLKEYLOGFILE), so
// that encrypted CQL connections (Cassandra's client_encryption_options,
// port 9142) can be analysed like plain ones.
//
// It is passive and knows nothing of packets or CQL: it takes each
// direction's reassembled byte stream, follows the handshake only as far as
// it must (client and server random, version, cipher suite, key changes),
// and hands back the application_data plaintext with facts about each
// record. It decrypts TLS 1.2 and 1.3 AEAD suites (AES-GCM,
// ChaCha20-Poly1305); it does not negotiate, verify certificates or send
// anything.
package tlsdecrypt
