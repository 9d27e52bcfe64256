package daemon

import (
	"context"
	"sync"

	"crmdrop/store"
)

// queue is the in-memory FIFO between the dispatcher and the workers. It is unbounded
// so the dispatcher never blocks on busy workers; the ledger, not the queue, is what
// survives a stop.
type queue struct {
	mu    sync.Mutex
	items []store.Entry
	ready chan struct{} // has a token while items is non-empty
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

func (q *queue) push(e store.Entry) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop blocks until an entry is queued or ctx ends.
func (q *queue) pop(ctx context.Context) (store.Entry, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			e := q.items[0]
			q.items[0] = store.Entry{}
			q.items = q.items[1:]
			more := len(q.items) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			return e, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return store.Entry{}, false
		case <-q.ready:
		}
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
