package interop

import (
	"bytes"
	"io"
	"testing"
)

// TestStream: the test data does not depend on the sizes of the reads
// that produce it, and no two kilobytes of it are alike.
func TestStream(t *testing.T) {
	const n = 3<<20 + 777
	whole, err := io.ReadAll(stream(5, n))
	if err != nil || len(whole) != n {
		t.Fatal(len(whole), err)
	}
	r := stream(5, n)
	var parts []byte
	for i := 1; ; i = i%4099 + 1 {
		buf := make([]byte, i)
		k, err := r.Read(buf)
		parts = append(parts, buf[:k]...)
		if err == io.EOF {
			break
		}
	}
	if !bytes.Equal(whole, parts) {
		t.Fatal("the stream depends on the read sizes")
	}
	seen := map[string]bool{}
	for off := 0; off+1024 <= n; off += 1024 {
		k := string(whole[off : off+1024])
		if seen[k] {
			t.Fatalf("the kilobyte at %d repeats an earlier one", off)
		}
		seen[k] = true
	}
	if bytes.Equal(whole[:4096], func() []byte { b, _ := io.ReadAll(stream(6, 4096)); return b }()) {
		t.Fatal("seeds 5 and 6 give the same stream")
	}
	if streamSum(5, n) != streamSum(5, n) {
		t.Fatal("streamSum")
	}
}
