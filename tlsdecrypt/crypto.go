package tlsdecrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// Protocol versions as they appear on the wire.
const (
	versionTLS12 = 0x0303
	versionTLS13 = 0x0304
)

type aeadKind uint8

const (
	aesGCM aeadKind = iota + 1
	chachaPoly
)

// suite is what decryption needs to know of a cipher suite. Only AEAD
// suites are here: they are what TLS 1.3 has and what TLS 1.2 stacks have
// negotiated by preference for a decade; CBC suites (and TLS 1.0/1.1) are
// reported as unsupported.
type suite struct {
	id      uint16
	tls13   bool
	kind    aeadKind
	keyLen  int
	ivLen   int // TLS 1.2: the implicit part of the nonce (4 for GCM, 12 for ChaCha); TLS 1.3: 12
	hash    func() hash.Hash
	hashLen int
}

func sha384() hash.Hash { return sha512.New384() }

// suites lists the supported suites. The TLS 1.2 ones with RSA or DHE key
// exchange decrypt the same way as the ECDHE ones: the key log gives the
// master secret whatever the key exchange was.
var suites = [...]suite{
	{0x1301, true, aesGCM, 16, 12, sha256.New, 32},     // TLS_AES_128_GCM_SHA256
	{0x1302, true, aesGCM, 32, 12, sha384, 48},         // TLS_AES_256_GCM_SHA384
	{0x1303, true, chachaPoly, 32, 12, sha256.New, 32}, // TLS_CHACHA20_POLY1305_SHA256

	{0xc02f, false, aesGCM, 16, 4, sha256.New, 32},      // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	{0xc030, false, aesGCM, 32, 4, sha384, 48},          // TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
	{0xc02b, false, aesGCM, 16, 4, sha256.New, 32},      // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	{0xc02c, false, aesGCM, 32, 4, sha384, 48},          // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
	{0xcca8, false, chachaPoly, 32, 12, sha256.New, 32}, // TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
	{0xcca9, false, chachaPoly, 32, 12, sha256.New, 32}, // TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
	{0xccaa, false, chachaPoly, 32, 12, sha256.New, 32}, // TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256
	{0x009c, false, aesGCM, 16, 4, sha256.New, 32},      // TLS_RSA_WITH_AES_128_GCM_SHA256
	{0x009d, false, aesGCM, 32, 4, sha384, 48},          // TLS_RSA_WITH_AES_256_GCM_SHA384
	{0x009e, false, aesGCM, 16, 4, sha256.New, 32},      // TLS_DHE_RSA_WITH_AES_128_GCM_SHA256
	{0x009f, false, aesGCM, 32, 4, sha384, 48},          // TLS_DHE_RSA_WITH_AES_256_GCM_SHA384
}

func findSuite(version, id uint16) *suite {
	for i := range suites {
		s := &suites[i]
		if s.id == id && s.tls13 == (version == versionTLS13) {
			return s
		}
	}
	return nil
}

// SuiteName returns the IANA name of a cipher suite, or its number.
func SuiteName(id uint16) string {
	switch id {
	case 0x1304:
		return "TLS_AES_128_CCM_SHA256"
	case 0x1305:
		return "TLS_AES_128_CCM_8_SHA256"
	}
	return tls.CipherSuiteName(id)
}

// VersionName returns the name of a protocol version ("TLS 1.2").
func VersionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSL 3.0"
	case 0x0301:
		return "TLS 1.0"
	case 0x0302:
		return "TLS 1.1"
	case versionTLS12:
		return "TLS 1.2"
	case versionTLS13:
		return "TLS 1.3"
	}
	return tls.VersionName(v)
}

func newAEAD(kind aeadKind, key []byte) (cipher.AEAD, error) {
	if kind == chachaPoly {
		return chacha20poly1305.New(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// prf12 is the TLS 1.2 PRF (RFC 5246 section 5): P_hash(secret, label+seed).
func prf12(h func() hash.Hash, secret []byte, label string, seed1, seed2 []byte, out []byte) {
	seed := make([]byte, 0, len(label)+len(seed1)+len(seed2))
	seed = append(append(append(seed, label...), seed1...), seed2...)
	mac := hmac.New(h, secret)
	mac.Write(seed)
	a := mac.Sum(nil)
	for len(out) > 0 {
		mac.Reset()
		mac.Write(a)
		mac.Write(seed)
		out = out[copy(out, mac.Sum(nil)):]
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
}

// keys12 derives one direction's key and implicit IV from the master
// secret (RFC 5246 section 6.3; RFC 5288 for GCM, RFC 7905 for ChaCha).
// The key block is client key, server key, client IV, server IV: AEAD
// suites have no MAC keys.
func keys12(s *suite, master, clientRandom, serverRandom []byte, server bool) (key, iv []byte) {
	kb := make([]byte, 2*s.keyLen+2*s.ivLen)
	prf12(s.hash, master, "key expansion", serverRandom, clientRandom, kb)
	key = kb[:s.keyLen]
	iv = kb[2*s.keyLen : 2*s.keyLen+s.ivLen]
	if server {
		key = kb[s.keyLen : 2*s.keyLen]
		iv = kb[2*s.keyLen+s.ivLen:]
	}
	return key, iv
}

// expandLabel is HKDF-Expand-Label with an empty context (RFC 8446 section
// 7.1), all that traffic keys and key updates use. It fails only where the
// hash is refused (FIPS 140-only mode).
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) ([]byte, error) {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	return hkdf.Expand(h, secret, string(info), n)
}
