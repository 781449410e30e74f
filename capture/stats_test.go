package capture

import (
	"reflect"
	"testing"
)

// TestSourceStatsAdd fills every counter with a distinct value, so that a
// counter added to SourceStats later and forgotten in Add fails here.
func TestSourceStatsAdd(t *testing.T) {
	var a, b, want SourceStats
	va, vb, vw := reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem(), reflect.ValueOf(&want).Elem()
	for i := range va.NumField() {
		va.Field(i).SetUint(uint64(i + 1))
		vb.Field(i).SetUint(uint64(100 * (i + 1)))
		vw.Field(i).SetUint(uint64(101 * (i + 1)))
	}
	sum := a
	sum.Add(b)
	if sum != want {
		t.Errorf("%+v plus %+v = %+v, want %+v", a, b, sum, want)
	}
	var zero SourceStats
	zero.Add(a)
	if zero != a {
		t.Errorf("zero plus %+v = %+v", a, zero)
	}
}
