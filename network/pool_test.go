package network

import "testing"

func TestSizeClasses(t *testing.T) {
	// Every size maps to the smallest class that holds it, classes grow,
	// and no class wastes more than a fifth of itself.
	prev := 0
	for c := 0; c < poolNumClasses; c++ {
		s := classSize(c)
		if s <= prev || sizeClass(s) != c || sizeClass(s+1) == c {
			t.Fatalf("class %d: size %d (previous %d)", c, s, prev)
		}
		if c > 0 && float64(s-prev-1)/float64(s) > 0.2 {
			t.Fatalf("class %d wastes %d of %d", c, s-prev-1, s)
		}
		prev = s
	}
	if classSize(poolNumClasses-1) != poolMaxSize || sizeClass(poolMaxSize+1) != -1 || bufCost(poolMaxSize+5) != poolMaxSize+5 {
		t.Fatal("top class")
	}
	for n := 1; n <= poolMaxSize; n++ {
		c := sizeClass(n)
		if classSize(c) < n || (c > 0 && classSize(c-1) >= n) {
			t.Fatalf("size %d in class %d of %d bytes", n, c, classSize(c))
		}
	}
	var p bufPool
	b := p.get(1000)
	if len(b) != 1000 || cap(b) != bufCost(1000) {
		t.Fatalf("get(1000): len %d cap %d", len(b), cap(b))
	}
	p.put(b)
	p.put(make([]byte, 1000)) // not from the pool: dropped
	if b2 := p.get(990); &b2[:1][0] != &b[:1][0] {
		t.Fatal("buffer not reused")
	}
	if b3 := p.get(990); cap(b3) != bufCost(990) {
		t.Fatal("a foreign buffer was pooled")
	}
	if big := p.get(poolMaxSize + 1); len(big) != poolMaxSize+1 {
		t.Fatal("oversize get")
	}
}

func TestFIFO(t *testing.T) {
	var q fifo[int]
	next, want := 0, 0
	for round := 0; round < 1000; round++ {
		for range round % 7 {
			q.push(next)
			next++
		}
		for range round % 5 {
			v, ok := q.pop()
			if !ok {
				if q.len() != 0 || want != next {
					t.Fatal("empty too early")
				}
				break
			}
			if v != want {
				t.Fatalf("popped %d, want %d", v, want)
			}
			want++
		}
		if q.len() != next-want {
			t.Fatalf("len %d, want %d", q.len(), next-want)
		}
	}
	q.filter(func(v int) bool { return v%2 == 0 })
	for v, ok := q.pop(); ok; v, ok = q.pop() {
		if v%2 != 0 || v < want {
			t.Fatalf("filter kept %d", v)
		}
	}
}
