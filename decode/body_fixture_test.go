package decode

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// What the body tests share: fixtures written as annotated hex, comparison
// that does not care for nil against empty, and the check that every slice
// a decoder returns aliases the body.

// ascii marks a fixture part that is raw text rather than hex.
type ascii string

// fixture builds bytes from annotated parts: a string is hex (spaces
// ignored), an ascii is raw text, a []byte is copied as is.
func fixture(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b, err := hex.DecodeString(strings.ReplaceAll(p, " ", ""))
			if err != nil {
				panic("bad hex in fixture: " + p)
			}
			out = append(out, b...)
		case ascii:
			out = append(out, p...)
		case []byte:
			out = append(out, p...)
		default:
			panic("bad fixture part")
		}
	}
	return out
}

func unhex(s string) []byte { return fixture(s) }

var (
	id16   = "00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff"
	mdID16 = "ff ee dd cc bb aa 99 88 77 66 55 44 33 22 11 00"
)

// splitFrame parses the envelope header at the start of a fixture and
// returns it with the body that follows.
func splitFrame(t testing.TB, frame []byte) (Header, []byte) {
	t.Helper()
	var h Header
	n := ParseHeader(frame, &h)
	if n <= 0 {
		t.Fatalf("fixture header does not parse: % x", frame[:min(len(frame), 9)])
	}
	return h, frame[n:]
}

func TestFixtureLengths(t *testing.T) {
	check := func(name string, frame []byte) {
		h, body := splitFrame(t, frame)
		if int(h.Length) != len(body) {
			t.Errorf("%s: header length %d, body %d bytes", name, h.Length, len(body))
		}
	}
	for _, tc := range requestCases {
		check(tc.name, tc.frame)
	}
	for _, tc := range responseCases {
		check(tc.name, tc.frame)
	}
}

// normalized returns a copy of v (a Request or Response) where empty byte
// slices and empty Children are nil, so that expectations need not care
// whether a decoder returned an empty slice of the body or nil. Bound values
// are left alone: there nil (null) and empty differ.
func normalized(v any) any {
	c := reflect.New(reflect.TypeOf(v)).Elem()
	c.Set(reflect.ValueOf(v))
	normalize(c)
	return c.Interface()
}

var bytesType = reflect.TypeOf([]byte(nil))

func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).Name == "Values" {
				if v.Field(i).Len() == 0 {
					v.Field(i).Set(reflect.Zero(v.Field(i).Type()))
				}
				continue
			}
			normalize(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.Type() != bytesType {
			for i := 0; i < v.Len(); i++ {
				normalize(v.Index(i))
			}
		}
	}
}

func sameValues(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if (a[i] == nil) != (b[i] == nil) || !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// fieldDiff lists the top-level fields where got and want (structs of one
// type) differ, one per line; "" when they are deeply equal.
func fieldDiff(got, want any) string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	var b strings.Builder
	for i := 0; i < g.NumField(); i++ {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			fmt.Fprintf(&b, "%s: got %+v, want %+v\n", g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
	return b.String()
}

// requestIsReset reports whether r is in the state Reset leaves it in.
func requestIsReset(r *Request, keep bool) bool {
	c := *r
	if len(c.Children) != 0 || len(c.Params.Values) != 0 {
		return false
	}
	c.Children, c.Params.Values = nil, nil
	return reflect.DeepEqual(c, Request{KeepValues: keep})
}

// forEachSlice calls fn for every byte slice reachable from v.
func forEachSlice(v reflect.Value, fn func([]byte)) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			forEachSlice(v.Field(i), fn)
		}
	case reflect.Slice:
		if v.Type() == bytesType {
			fn(v.Bytes())
			return
		}
		for i := 0; i < v.Len(); i++ {
			forEachSlice(v.Index(i), fn)
		}
	case reflect.Pointer:
		forEachSlice(v.Elem(), fn)
	}
}

// within reports whether s (if not empty) lies inside b.
func within(s, b []byte) bool {
	if len(s) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	// Compare addresses via sub-slicing: s is inside b when some offset of b
	// shares s's first element and s fits after it.
	first := &s[0]
	for i := range b {
		if &b[i] == first {
			return i+len(s) <= len(b)
		}
	}
	return false
}

func checkWithin(t testing.TB, body []byte, v any) {
	t.Helper()
	forEachSlice(reflect.ValueOf(v), func(s []byte) {
		if !within(s, body) {
			t.Errorf("slice %q does not alias the body", s)
		}
	})
}
