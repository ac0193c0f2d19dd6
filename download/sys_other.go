//go:build !linux

package download

import "os"

func lockFile(f *os.File) (bool, error)        { return true, nil }
func preallocate(f *os.File, size int64) error { return f.Truncate(size) }
func allocated(f *os.File) int64               { return 0 }
func freeSpace(dir string) int64               { return -1 }
func startWriteback(f *os.File, off, n int64)  {}
