//go:build !unix

package inbox

// openNonblock is 0 where opening a pipe does not wait for its writer (Windows).
const openNonblock = 0
