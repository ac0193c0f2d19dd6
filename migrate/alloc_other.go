//go:build !unix

package migrate

import "os"

// allocated returns the file's length where the allocated size is not
// known.
func allocated(fi os.FileInfo) int64 { return fi.Size() }
