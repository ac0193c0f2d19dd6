package faultserver

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// waitSent waits, up to limit, until the kernel has no unacknowledged data
// queued on c (SIOCOUTQ), so that a reset loses nothing already written.
func waitSent(c *net.TCPConn, limit time.Duration) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var queued int32
		var errno syscall.Errno
		err := raw.Control(func(fd uintptr) {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&queued)))
		})
		if err != nil || errno != 0 || queued == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
