package chunk

import "testing"

func TestInUseCountsGetAndPut(t *testing.T) {
	before := InUse()
	a, b := Get(), Get()
	if InUse() != before+2 {
		t.Fatalf("InUse after two Gets = %d, want %d", InUse(), before+2)
	}
	a[0], b[Size-1] = 1, 2 // the whole chunk is usable
	Put(a)
	Put(b)
	if InUse() != before {
		t.Fatalf("InUse after Put = %d, want %d", InUse(), before)
	}
}
