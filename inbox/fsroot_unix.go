//go:build unix

package inbox

import "syscall"

// openNonblock keeps an open from waiting for a writer when a pipe (FIFO) is swapped
// in for a file between its check and its open; the fstat after the open refuses it.
const openNonblock = syscall.O_NONBLOCK
