// Package retained measures the memory a value keeps reachable. Tests use it
// to bound what a decoder, reader or assembler holds by counting its own
// buffers, where the heap after a collection would also count other
// goroutines' garbage and the collector's timing.
package retained

import (
	"reflect"
	"unsafe"
)

// Bytes is the memory reachable from v and not from any of except: the
// backing arrays of slices (by capacity), the bytes of strings, the entries
// of maps, and every value reached through a pointer or an interface,
// unexported fields included. Each pointed-to object is counted once; v
// itself is counted only if it is a pointer. Slices that alias one array at
// different offsets are counted separately: the result never undercounts.
// Channels, functions and unsafe pointers are not followed.
func Bytes(v any, except ...any) int {
	w := walker{seen: map[uintptr]bool{}, ptrs: map[reflect.Type]bool{}}
	w.off = true
	for _, e := range except {
		w.value(reflect.ValueOf(e))
	}
	w.off = false
	w.value(reflect.ValueOf(v))
	return w.n
}

type walker struct {
	n    int
	off  bool // marking what except reaches, not counting
	seen map[uintptr]bool
	ptrs map[reflect.Type]bool // whether values of a type can hold references
}

func (w *walker) add(n int) {
	if !w.off {
		w.n += n
	}
}

// first reports whether the object at p has not been seen yet, and marks it.
func (w *walker) first(p uintptr) bool {
	if p == 0 || w.seen[p] {
		return false
	}
	w.seen[p] = true
	return true
}

// value follows what v refers to; v's own bytes are counted by its holder.
func (w *walker) value(v reflect.Value) {
	if !v.IsValid() || !w.refs(v.Type()) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() && w.first(v.Pointer()) {
			w.add(int(v.Type().Elem().Size()))
			w.value(v.Elem())
		}
	case reflect.Interface:
		if !v.IsNil() {
			e := v.Elem()
			if e.Kind() != reflect.Pointer {
				w.add(int(e.Type().Size())) // boxed
			}
			w.value(e)
		}
	case reflect.Slice:
		if v.Cap() == 0 || !w.first(v.Pointer()) {
			return
		}
		w.add(v.Cap() * int(v.Type().Elem().Size()))
		if w.refs(v.Type().Elem()) {
			for i := range v.Len() {
				w.value(v.Index(i))
			}
		}
	case reflect.String:
		s := v.String()
		if len(s) > 0 && w.first(uintptr(unsafe.Pointer(unsafe.StringData(s)))) {
			w.add(len(s))
		}
	case reflect.Map:
		if v.IsNil() || !w.first(v.Pointer()) {
			return
		}
		t := v.Type()
		w.add(v.Len() * int(t.Key().Size()+t.Elem().Size()))
		for it := v.MapRange(); it.Next(); {
			w.value(it.Key())
			w.value(it.Value())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			w.value(v.Field(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			w.value(v.Index(i))
		}
	}
}

// refs reports whether a value of type t can refer to other memory, so that
// large arrays and slices of plain data are not walked element by element.
func (w *walker) refs(t reflect.Type) bool {
	r, ok := w.ptrs[t]
	if ok {
		return r
	}
	w.ptrs[t] = true // a recursive type refers to memory through a pointer anyway
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.String, reflect.Map:
		r = true
	case reflect.Array:
		r = t.Len() > 0 && w.refs(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if w.refs(t.Field(i).Type) {
				r = true
				break
			}
		}
	}
	w.ptrs[t] = r
	return r
}
