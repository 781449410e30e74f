package analyze

import "testing"

// TestRedactMessage: error messages lose what may echo the user's data.
func TestRedactMessage(t *testing.T) {
	for in, want := range map[string]string{
		"Operation timed out - received only 0 responses.":                              "Operation timed out - received only ? responses.",
		`Invalid STRING constant (hunter2) for "password" of type text`:                 `Invalid STRING constant (?) for "password" of type text`,
		"line 1:33 mismatched input 'secret' expecting EOF (...VALUES (1, [secret]...)": "line ?:? mismatched input ? expecting EOF (?)",
		"Undefined column name foo in table ks.t":                                       "Undefined column name foo in table ks.t",
		"unbalanced (secret": "unbalanced (?)",
		"Key length of 70000 is longer than maximum of 65535": "Key length of ? is longer than maximum of ?",
	} {
		if got, _ := redactMessage([]byte("x"), nil, []byte(in)); string(got) != "x"+want {
			t.Errorf("%q: got %q, want %q", in, got, "x"+want)
		}
	}
}
