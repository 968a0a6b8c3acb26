package tcp

import (
	"sync"

	"github.com/ustack/ustack/internal/chunk"
	"github.com/ustack/ustack/internal/ring"
)

// chunks is a byte queue made of pooled chunks. Byte i of the queue (counted
// from the front) lives at c[(head+i)/chunk.Size][(head+i)%chunk.Size].
// Positions past the written part may be filled out of order (the receive
// side's out-of-order data); a chunk is taken when the first byte lands in
// it and given back when its last byte is consumed. The chunk pointers are
// a ring, so consuming a chunk does not shift the ones after it.
type chunks struct {
	c    ring.Ring[*chunk.Chunk]
	head int // offset of the front byte in c's first chunk
}

// writeAt copies p to queue positions off...
func (q *chunks) writeAt(off int, p []byte) {
	for len(p) > 0 {
		abs := q.head + off
		ci, within := abs/chunk.Size, abs%chunk.Size
		for q.c.Len() <= ci {
			q.c.PushBack(nil)
		}
		c := q.c.Ptr(ci)
		if *c == nil {
			*c = chunk.Get()
		}
		n := copy((*c)[within:], p)
		p = p[n:]
		off += n
	}
}

// readAt copies queue positions off... into p; the positions must have been
// written.
func (q *chunks) readAt(off int, p []byte) {
	for len(p) > 0 {
		abs := q.head + off
		ci, within := abs/chunk.Size, abs%chunk.Size
		n := copy(p, q.c.At(ci)[within:])
		p = p[n:]
		off += n
	}
}

// consume drops n bytes from the front, giving back chunks that empties.
func (q *chunks) consume(n int) {
	q.head += n
	for q.head >= chunk.Size && q.c.Len() > 0 {
		if c, _ := q.c.PopFront(); c != nil {
			chunk.Put(c)
		}
		q.head -= chunk.Size
	}
	if q.c.Len() == 0 {
		q.head = 0
	}
}

// release gives back every chunk and empties the queue.
func (q *chunks) release() {
	for q.c.Len() > 0 {
		if c, _ := q.c.PopFront(); c != nil {
			chunk.Put(c)
		}
	}
	q.head = 0
}

// chunksPool holds the queues of the buffers that are empty now: a
// connection holds a queue (and its ring of chunk pointers) only while
// its buffer holds bytes, and one that drains its buffer many times a
// second takes the same queue back each time rather than allocating.
var chunksPool = sync.Pool{New: func() any { return new(chunks) }}

// getChunks makes *pq a queue from chunksPool if it has none.
func getChunks(pq **chunks) *chunks {
	if *pq == nil {
		*pq = chunksPool.Get().(*chunks)
	}
	return *pq
}

// putChunks gives *pq's chunks back and the queue to chunksPool.
func putChunks(pq **chunks) {
	if q := *pq; q != nil {
		*pq = nil
		q.release()
		chunksPool.Put(q)
	}
}

// held returns the number of chunks the queue holds.
func (q *chunks) held() int {
	if q == nil {
		return 0
	}
	n := 0
	for i := range q.c.Len() {
		if q.c.At(i) != nil {
			n++
		}
	}
	return n
}

// sendBuf holds the bytes the application wrote and the peer has not
// acknowledged: position 0 is SND.UNA's byte (after the SYN).
type sendBuf struct {
	q *chunks // nil while n is 0
	n int     // bytes buffered: unacknowledged plus not yet sent
}

// write appends up to room bytes of p and returns how many it took.
func (b *sendBuf) write(p []byte, room int) int {
	if len(p) > room {
		p = p[:room]
	}
	if len(p) == 0 {
		return 0
	}
	getChunks(&b.q).writeAt(b.n, p)
	b.n += len(p)
	return len(p)
}

// peek copies the bytes at positions off... into p.
func (b *sendBuf) peek(off int, p []byte) {
	if len(p) > 0 {
		b.q.readAt(off, p)
	}
}

// ack drops n acknowledged bytes from the front.
func (b *sendBuf) ack(n int) {
	b.n -= n
	if b.n == 0 {
		putChunks(&b.q)
		return
	}
	b.q.consume(n)
}

// free drops everything (the connection ended).
func (b *sendBuf) free() { putChunks(&b.q) }

// recvBuf holds received bytes the application has not read: positions
// 0..n-1 are in order and readable; positions from n on may hold
// out-of-order data that the reassembly ranges describe.
type recvBuf struct {
	q *chunks // nil while it holds nothing, in order or out of order
	n int     // in-order bytes readable
}

// writeAt copies p to positions off... (off ≥ n: out-of-order data).
func (b *recvBuf) writeAt(off int, p []byte) {
	if len(p) > 0 {
		getChunks(&b.q).writeAt(off, p)
	}
}

// read copies up to len(p) readable bytes into p and consumes them. keep
// says whether out-of-order data lies beyond them (then chunks are kept).
func (b *recvBuf) read(p []byte, keep bool) int {
	k := min(len(p), b.n)
	if k > 0 {
		b.q.readAt(0, p[:k])
	}
	b.consumed(k, keep)
	return k
}

// discard consumes up to k readable bytes without copying them.
func (b *recvBuf) discard(k int, keep bool) {
	k = min(k, b.n)
	b.consumed(k, keep)
}

func (b *recvBuf) consumed(k int, keep bool) {
	b.n -= k
	if b.n == 0 && !keep {
		putChunks(&b.q)
	} else if b.q != nil {
		b.q.consume(k)
	}
}

// free drops everything (the connection ended).
func (b *recvBuf) free() { putChunks(&b.q) }
