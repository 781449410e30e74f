package decode

import (
	"math/bits"
	"sync"
)

// Decompressed bytes (v1–v4 bodies, v5 lz4 segment payloads) of more than
// smallKept bytes go into buffers lent from pools shared by all Streams,
// one pool per power-of-two size, and go back when the stream is next
// called and the frame that aliases them is no longer valid. A Stream used
// to keep its largest output for as long as its connection lived: up to
// MaxDecompressed (16 MiB) from a 66 KB lz4 body, so 300 connections that
// each sent one such body held 4.8 GB. Now a Stream keeps at most
// smallKept bytes of each kind of output.
const (
	smallKept      = 4 << 10
	minPoolShift   = 10 // the smallest pooled buffer: 1 KiB
	numPoolClasses = 15 // the largest: 16 MiB
)

var bufPools [numPoolClasses]sync.Pool // of *[]byte

// poolClass is the pool whose buffers hold n bytes, or -1 when n is over
// the largest.
func poolClass(n int) int {
	k := 0
	if n > 1<<minPoolShift {
		k = bits.Len(uint(n-1)) - minPoolShift
	}
	if k >= numPoolClasses {
		return -1
	}
	return k
}

// lend returns a buffer of at least n bytes (its length is its capacity).
func lend(n int) *[]byte {
	k := poolClass(n)
	if k < 0 {
		b := make([]byte, n)
		return &b
	}
	if p, _ := bufPools[k].Get().(*[]byte); p != nil {
		return p
	}
	b := make([]byte, 1<<(minPoolShift+k))
	return &b
}

// giveBack returns a buffer from lend; nil is ignored.
func giveBack(p *[]byte) {
	if p == nil {
		return
	}
	if c := cap(*p); c >= 1<<minPoolShift && c&(c-1) == 0 {
		if k := poolClass(c); k >= 0 {
			*p = (*p)[:c]
			bufPools[k].Put(p)
		}
	}
}
