package network

import (
	"reflect"
	"testing"
)

func TestStatsEach(t *testing.T) {
	// Each visits every counter once, in declaration order, with its value.
	var s Stats
	v := reflect.ValueOf(&s).Elem()
	for i := 0; i < v.NumField(); i++ {
		v.Field(i).SetUint(uint64(i + 1))
	}
	i := 0
	s.Each(func(name string, val uint64) {
		if want := v.Type().Field(i).Name; name != want || val != uint64(i+1) {
			t.Errorf("counter %d: %s=%d, want %s=%d", i, name, val, want, i+1)
		}
		i++
	})
	if i != v.NumField() || i != 104 {
		t.Errorf("Each visited %d counters, struct has %d", i, v.NumField())
	}
}
