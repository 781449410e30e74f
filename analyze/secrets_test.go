package analyze

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// TestSecretsNeverShown: a SASL PLAIN AUTH_RESPONSE (user and password in
// clear) and a CREATE ROLE ... PASSWORD literal never reach the report or
// the log, even with ShowValues or HashValues (--show-values,
// --hash-values).
func TestSecretsNeverShown(t *testing.T) {
	token := []byte("\x00cassandra\x00hunter2-secret")
	authBody := binary.BigEndian.AppendUint32(nil, uint32(len(token)))
	authBody = append(authBody, token...)
	q := "CREATE ROLE bob WITH PASSWORD = 'hunter2-secret' AND LOGIN = true"
	qBody := queryBody(q)
	// A prepared ALTER ROLE with the password bound, and an error that
	// echoes a literal.
	alter := "ALTER ROLE bob WITH PASSWORD = ?"
	prep := append(binary.BigEndian.AppendUint32(nil, uint32(len(alter))), alter...)
	id := []byte{0x5e, 0xc2, 0xe7, 0x01}
	prepared := binary.BigEndian.AppendUint32(nil, 4) // RESULT Prepared
	prepared = append(append(prepared, 0, byte(len(id))), id...)
	prepared = binary.BigEndian.AppendUint32(prepared, 0) // metadata flags
	prepared = binary.BigEndian.AppendUint32(prepared, 1) // one column
	prepared = binary.BigEndian.AppendUint32(prepared, 0) // no partition key index
	prepared = append(append(append(append(prepared, str("system_auth")...), str("roles")...), str("salted_hash")...), 0, 0x0D)
	prepared = binary.BigEndian.AppendUint32(prepared, 4) // result metadata: No_metadata
	prepared = binary.BigEndian.AppendUint32(prepared, 0)
	secret := "hunter2-secret"
	exec := append(append([]byte{0, byte(len(id))}, id...), 0x00, 0x01, 0x01, 0x00, 0x01)
	exec = append(binary.BigEndian.AppendUint32(exec, uint32(len(secret))), secret...)
	bad := "INSERT INTO t (k) VALUES ('hunter2-secret')"
	badBody := queryBody(bad)
	echo := append(binary.BigEndian.AppendUint32(nil, 0x2200), str("Invalid STRING constant (hunter2-secret) for \"k\" of type int")...)
	data := tcpPcap(
		// 04 00 00 01 0f ...: v4 AUTH_RESPONSE on stream 1
		frame(0x04, 0, 1, 0x0F, authBody),
		// 84 00 00 01 10 00 00 00 04 ff ff ff ff: AUTH_SUCCESS, null token
		frame(0x84, 0, 1, 0x10, []byte{0xff, 0xff, 0xff, 0xff}),
		frame(0x04, 0, 2, 0x07, qBody),
		frame(0x84, 0, 2, 0x08, []byte{0, 0, 0, 1}),
		frame(0x04, 0, 3, 0x09, prep),
		frame(0x84, 0, 3, 0x08, prepared),
		frame(0x04, 0, 4, 0x0A, exec),
		frame(0x84, 0, 4, 0x08, []byte{0, 0, 0, 1}),
		frame(0x04, 0, 5, 0x07, badBody),
		frame(0x84, 0, 5, 0x00, echo),
	)
	for _, hash := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.HashValues = hash
		rep, log := runWithLog(t, data, cfg)
		js, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		if err := rep.WriteText(&text, 20); err != nil {
			t.Fatal(err)
		}
		all := string(js) + text.String() + log
		if strings.Contains(all, "hunter2") || strings.Contains(all, hex.EncodeToString([]byte("hunter2"))) {
			t.Errorf("hash values %v: a secret reached the output:\n%s", hash, all)
		}
		if !strings.Contains(log, `"opcode":"AUTH_RESPONSE"`) || !strings.Contains(log, "PASSWORD = ?") {
			t.Errorf("hash values %v: exchanges missing from the log:\n%s", hash, log)
		}
	}
	// ShowValues shows literal query text, except password literals; the
	// AUTH_RESPONSE token stays hidden too.
	cfg := DefaultConfig()
	cfg.ShowValues = true
	_, log := runWithLog(t, data, cfg)
	// (It shows the literal of the failed INSERT, and the error echoing it:
	// that is what was asked for. Not the password.)
	if strings.Contains(log, "PASSWORD = 'hunter2") || strings.Contains(log, hex.EncodeToString([]byte("hunter2"))) {
		t.Errorf("ShowValues revealed a password:\n%s", log)
	}
	if !strings.Contains(log, `"values_withheld":"the statement sets a password"`) {
		t.Errorf("ShowValues: the bound password is not withheld:\n%s", log)
	}
}
