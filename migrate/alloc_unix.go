//go:build unix

package migrate

import (
	"os"
	"syscall"
)

// allocated returns the bytes a file takes on disk: a sparse image's
// holes take none, and a copy moves at most this much.
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return min(int64(st.Blocks)*512, max(fi.Size(), 0))
	}
	return fi.Size()
}
