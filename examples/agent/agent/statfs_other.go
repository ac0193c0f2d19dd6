//go:build !linux

package agent

// freeBytes is unknown (0) outside Linux.
func freeBytes(string) int64 { return 0 }
