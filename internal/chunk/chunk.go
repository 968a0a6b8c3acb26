// Package chunk is the pool of fixed-size buffer chunks that TCP send and
// receive buffers are made of. Chunks are taken when data arrives and given
// back when it is consumed, so an idle connection holds none, and steady
// traffic reuses the same chunks without allocating.
package chunk

import (
	"sync"
	"sync/atomic"
)

// Size is the size of a chunk in bytes.
const Size = 16 << 10

// Chunk is one buffer chunk.
type Chunk [Size]byte

var (
	pool  = sync.Pool{New: func() any { return new(Chunk) }}
	inUse atomic.Int64
)

// Get takes a chunk from the pool. Its contents are undefined.
func Get() *Chunk {
	inUse.Add(1)
	return pool.Get().(*Chunk)
}

// Put gives c back to the pool; the caller must not use it again.
func Put(c *Chunk) {
	inUse.Add(-1)
	pool.Put(c)
}

// InUse returns how many chunks are taken and not yet given back, across
// the process: the buffer memory held by connections is InUse()*Size.
func InUse() int64 { return inUse.Load() }
