package link

// MultiQueue is an Endpoint with several queues of its own, as a NIC with
// RSS has: a multi-queue TAP device (IFF_MULTI_QUEUE), an AF_PACKET
// fanout group. Each queue is an Endpoint: it reads the frames the kernel
// steered to it and writes on its own, so a runtime gives each queue a
// reader and lets each of its shards write to a queue of its own instead
// of taking turns on one. The MultiQueue value itself is queue 0;
// closing it closes every queue.
type MultiQueue interface {
	Endpoint
	// Queues returns the queues, the receiver first; at least one.
	Queues() []Endpoint
}
