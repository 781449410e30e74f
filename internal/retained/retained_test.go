package retained

import (
	"testing"
	"unsafe"
)

type node struct {
	buf  []byte
	name string
	next *node
	any  any
	m    map[int][]byte
}

// TestBytes: each object once, cycles and aliases included; what the
// exceptions reach is left out.
func TestBytes(t *testing.T) {
	shared := make([]byte, 10, 100)
	a := &node{buf: shared, name: "abc"}
	b := &node{buf: make([]byte, 1000), next: a, any: a}
	a.next = b // a cycle
	size := int(unsafe.Sizeof(node{}))
	if got, want := Bytes(a), 2*size+100+3+1000; got != want {
		t.Errorf("Bytes(a) = %d, want %d (two nodes, two buffers, a string, each once)", got, want)
	}
	if got, want := Bytes(b, a), 0; got != want {
		t.Errorf("Bytes(b, a) = %d, want %d: everything b reaches, a reaches", got, want)
	}
	if got, want := Bytes(b, shared), size+1000+size+3; got != want {
		t.Errorf("Bytes(b, shared) = %d, want %d", got, want)
	}
	m := &node{m: map[int][]byte{1: make([]byte, 64)}}
	if got := Bytes(m); got < size+64+8 {
		t.Errorf("Bytes of a map of buffers = %d, want at least %d", got, size+64+8)
	}
	if got := Bytes(node{buf: make([]byte, 7)}); got != 7 {
		t.Errorf("Bytes of a struct value = %d, want its buffer's 7", got)
	}
}
