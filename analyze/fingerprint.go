package analyze

// Fingerprint appends to dst the shape of a CQL statement: literals
// (strings, numbers, UUIDs, blobs, booleans are kept) replaced by ?, lists of
// literals collapsed to ?+, comments dropped, and whitespace runs collapsed to
// one space, as pt-query-digest does for SQL. Statements that differ only in
// their literal values get the same fingerprint, and literal values (which
// may hold passwords) never reach a report. It allocates only when dst must
// grow.
func Fingerprint(dst, q []byte) []byte {
	dst, _ = fingerprint(dst, q)
	return dst
}

// fingerprint is Fingerprint, also reporting whether it left out anything
// but whitespace: a literal or a comment.
func fingerprint(dst, q []byte) (_ []byte, hid bool) {
	base := len(dst)
	space := false // a space is owed before the next token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case charClass[c]&cSpace != 0:
			space = len(dst) > base
			i++
			continue
		case c == '-' && i+1 < len(q) && q[i+1] == '-', c == '/' && i+1 < len(q) && q[i+1] == '/':
			for i < len(q) && q[i] != '\n' {
				i++
			}
			space, hid = len(dst) > base, true
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i += 2
			for i+1 < len(q) && !(q[i] == '*' && q[i+1] == '/') {
				i++
			}
			i += 2
			space, hid = len(dst) > base, true
			continue
		}
		if space {
			dst = append(dst, ' ')
			space = false
		}
		switch {
		case c == '\'':
			i = skipQuoted(q, i, '\'')
			dst, hid = literal(dst, base), true
		case c == '$' && i+1 < len(q) && q[i+1] == '$':
			j := i + 2
			for j+1 < len(q) && !(q[j] == '$' && q[j+1] == '$') {
				j++
			}
			i = j + 2
			dst, hid = literal(dst, base), true
		case c == '"':
			j := skipQuoted(q, i, '"')
			if j > len(q) {
				j = len(q)
			}
			dst = append(dst, q[i:j]...)
			i = j
		case isDigit(c) || (c == '-' || c == '+') && i+1 < len(q) && isDigit(q[i+1]) && numberMayStart(dst, base):
			if n := uuidLen(q[i:]); n > 0 {
				i += n
			} else if c == '0' && i+1 < len(q) && (q[i+1] == 'x' || q[i+1] == 'X') {
				i += 2
				for i < len(q) && isHex(q[i]) {
					i++
				}
			} else {
				i = skipNumber(q, i)
			}
			dst, hid = literal(dst, base), true
		case isIdentStart(c):
			if n := uuidLen(q[i:]); n > 0 {
				i += n
				dst, hid = literal(dst, base), true
				continue
			}
			j := i
			for j < len(q) && isIdent(q[j]) {
				j++
			}
			dst = append(dst, q[i:j]...)
			i = j
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst, hid
}

// literal appends a ? for a literal, folding "?, ?" into "?+".
func literal(dst []byte, base int) []byte {
	n := len(dst)
	j := n
	if j > base && dst[j-1] == ' ' {
		j--
	}
	if j > base && dst[j-1] == ',' {
		j--
		if j > base && dst[j-1] == ' ' {
			j--
		}
		if j > base && dst[j-1] == '+' && j-1 > base && dst[j-2] == '?' {
			return dst[:j]
		}
		if j > base && dst[j-1] == '?' && listStart(dst[base:j-1]) {
			return append(dst[:j], '+')
		}
	}
	return append(dst, '?')
}

// listStart reports whether a literal that ends b is the first element of a
// list: an open bracket comes right before it.
func listStart(b []byte) bool {
	i := len(b)
	for i > 0 && b[i-1] == ' ' {
		i--
	}
	return i > 0 && (b[i-1] == '(' || b[i-1] == '[' || b[i-1] == '{')
}

func skipQuoted(q []byte, i int, quote byte) int {
	i++
	for i < len(q) {
		if q[i] == quote {
			if i+1 < len(q) && q[i+1] == quote {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(q)
}

func skipNumber(q []byte, i int) int {
	if q[i] == '-' || q[i] == '+' {
		i++
	}
	for i < len(q) && (isDigit(q[i]) || q[i] == '.') {
		i++
	}
	if i < len(q) && (q[i] == 'e' || q[i] == 'E') {
		j := i + 1
		if j < len(q) && (q[j] == '-' || q[j] == '+') {
			j++
		}
		if j < len(q) && isDigit(q[j]) {
			i = j
			for i < len(q) && isDigit(q[i]) {
				i++
			}
		}
	}
	return i
}

// numberMayStart reports whether a sign here starts a number rather than
// being an operator: after an operator, a comma or an open bracket.
func numberMayStart(dst []byte, base int) bool {
	j := len(dst)
	for j > base && dst[j-1] == ' ' {
		j--
	}
	if j == base {
		return true
	}
	switch dst[j-1] {
	case '=', '<', '>', '(', ',', '[', '{', ':':
		return true
	}
	return false
}

// uuidLen returns 36 if b starts with a UUID literal not followed by an
// identifier character.
func uuidLen(b []byte) int {
	if len(b) < 36 {
		return 0
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if b[i] != '-' {
				return 0
			}
		default:
			if !isHex(b[i]) {
				return 0
			}
		}
	}
	if len(b) > 36 && isIdent(b[36]) {
		return 0
	}
	return 36
}

// Character classes, looked up in a table: a fingerprint classifies every
// byte of every QUERY text, several times for some (a UUID literal is
// tried at each identifier and number), and one load costs less than the
// comparisons the classes are defined by (charClasses).
const (
	cDigit = 1 << iota
	cHex
	cIdentStart
	cIdent
	cSpace
)

var charClass = charClasses()

func charClasses() (t [256]uint8) {
	for i := range t {
		c := byte(i)
		digit := c >= '0' && c <= '9'
		identStart := (c|0x20) >= 'a' && (c|0x20) <= 'z' || c == '_' || c >= 0x80
		if digit {
			t[i] |= cDigit | cHex | cIdent
		}
		if (c|0x20) >= 'a' && (c|0x20) <= 'f' {
			t[i] |= cHex
		}
		if identStart {
			t[i] |= cIdentStart | cIdent
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
			t[i] |= cSpace
		}
	}
	return t
}

func isDigit(c byte) bool      { return charClass[c]&cDigit != 0 }
func isHex(c byte) bool        { return charClass[c]&cHex != 0 }
func isIdentStart(c byte) bool { return charClass[c]&cIdentStart != 0 }
func isIdent(c byte) bool      { return charClass[c]&cIdent != 0 }
